-- A cancel request for a running run: the process running it polls for it, stops making new
-- provider calls, lets the calls in flight finish, and ends the run `cancelled`. Any replica
-- may take the request; the one holding the run acts on it.
ALTER TABLE runs ADD COLUMN cancel_requested_at TIMESTAMPTZ;

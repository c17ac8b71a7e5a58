// curator's pages: refresh the parts marked data-live when jobs or runs change, and send the
// Run now and Preview actions. Hand-written, no dependencies. Everything that comes from the
// server is put into the page as text, never as markup.
"use strict";
(() => {
  const POLL_MS = 2000;
  const meta = document.querySelector('meta[name="curator-version"]');
  let version = meta ? meta.content : "";

  async function refresh() {
    const response = await fetch(location.href, { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const part of document.querySelectorAll("[data-live]")) {
      const replacement = fresh.getElementById(part.id);
      if (replacement) part.replaceWith(document.adoptNode(replacement));
    }
  }

  async function poll() {
    try {
      const response = await fetch("/api/v1/changes", { cache: "no-store", credentials: "same-origin" });
      if (response.ok) {
        const next = (await response.json()).version;
        if (next !== version) {
          version = next;
          await refresh();
        }
      }
    } catch (_) {
      // The server is restarting or the network is down: try again at the next tick.
    }
    setTimeout(poll, POLL_MS);
  }
  if (version) setTimeout(poll, POLL_MS);

  function say(text, href) {
    const line = document.getElementById("action-status");
    if (!line) return;
    line.textContent = text;
    if (href) {
      const link = document.createElement("a");
      link.href = href;
      link.textContent = href === "/login" ? " Enter the API token" : " View it";
      line.append(link);
    }
  }

  async function post(url) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    return { response, body };
  }

  function failure(response, body) {
    const message = body && body.message ? body.message : "the server answered " + response.status;
    say("Failed: " + message, response.status === 401 ? "/login" : null);
  }

  // Sends one action from `button`: `pending` while it goes, then `done(body)` on success.
  async function act(button, pending, url, done) {
    button.disabled = true;
    say(pending);
    try {
      const { response, body } = await post(url);
      if (response.ok && body) {
        await done(body);
      } else {
        failure(response, body);
      }
    } catch (e) {
      say("Failed: " + e.message);
    } finally {
      button.disabled = false;
    }
  }

  function runNow(button) {
    const url = "/api/v1/jobs/" + encodeURIComponent(button.dataset.job) + "/run";
    return act(button, "Queueing a run…", url, async (body) => {
      say("Queued run #" + body.run.id + ".", "/runs/" + body.run.id);
      await refresh();
    });
  }

  function cancel(button) {
    const run = button.dataset.run;
    const url = "/api/v1/runs/" + encodeURIComponent(run) + "/cancel";
    return act(button, "Cancelling…", url, async (body) => {
      say(body.outcome === "requested"
        ? "Cancel requested: the run stops after the calls in flight."
        : "Run #" + run + " cancelled.");
      await refresh();
    });
  }

  function cell(row, text, label, className) {
    const td = document.createElement("td");
    td.textContent = text;
    td.dataset.label = label;
    if (className) td.className = className;
    row.append(td);
  }

  function show(value) {
    return value === undefined || value === null ? "null" : JSON.stringify(value);
  }

  // The words `curator preview` prints for each layer and outcome.
  const LAYERS = {
    outsideGroups: "outside the job's groups",
    notPermitted: "not permitted",
    notReturned: "not returned",
    refused: "refused",
    locked: "locked",
  };
  const OUTCOMES = {
    update: "would update",
    unchanged: "would leave unchanged",
    noMatch: "no confident match, would be skipped",
    failed: "would fail",
  };
  const VERDICTS = { change: "would change", unchanged: "unchanged", blocked: "blocked" };

  function renderPreview(body) {
    const target = document.getElementById("preview");
    target.replaceChildren();
    const heading = document.createElement("h2");
    heading.textContent = "Preview";
    target.append(heading);
    const entries = body.entries || [];
    const plan = body.plan || {};
    const summary = document.createElement("p");
    summary.textContent = entries.length + " of " + (plan.planned || 0) +
      " planned entries, from provider " + body.provider + "; nothing was written.";
    target.append(summary);
    for (const entry of entries) {
      const title = document.createElement("h3");
      title.textContent = entry.kind + " " + entry.entry + (entry.title ? " — " + entry.title : "") +
        ": " + (OUTCOMES[entry.outcome] || entry.outcome);
      target.append(title);
      if (entry.error) {
        const error = document.createElement("p");
        error.textContent = entry.error;
        target.append(error);
      }
      const table = document.createElement("table");
      table.className = "preview";
      const head = table.createTHead().insertRow();
      for (const name of ["Field", "Verdict", "Before → after", "Blocked by"]) {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = name;
        head.append(th);
      }
      const tbody = table.createTBody();
      // What would change first, then what stays, then what is blocked.
      const order = { change: 0, unchanged: 1, blocked: 2 };
      const fields = (entry.fields || []).slice().sort((a, b) => order[a.verdict] - order[b.verdict]);
      for (const field of fields) {
        const row = tbody.insertRow();
        row.className = "field verdict-" + field.verdict;
        cell(row, field.field, "Field");
        cell(row, VERDICTS[field.verdict] || field.verdict, "Verdict");
        cell(row, field.verdict === "change" ? show(field.before) + " → " + show(field.after) : "", "Before → after");
        const layer = field.layer ? (LAYERS[field.layer] || field.layer) : "";
        cell(row, field.detail ? layer + " (" + field.detail + ")" : layer, "Blocked by");
      }
      target.append(table);
    }
    target.hidden = false;
  }

  function preview(form) {
    const sample = form.querySelector("input[name=sample]").value || "5";
    const url = "/api/v1/jobs/" + encodeURIComponent(form.dataset.job) + "/preview?sample=" +
      encodeURIComponent(sample);
    return act(form.querySelector("button"), "Previewing…", url, (body) => {
      renderPreview(body);
      say("Preview ready.");
    });
  }

  document.addEventListener("click", (event) => {
    const run = event.target.closest("button[data-action=run]");
    if (run) runNow(run);
    const stop = event.target.closest("button[data-action=cancel]");
    if (stop) cancel(stop);
  });
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form.preview-form");
    if (!form) return;
    event.preventDefault();
    preview(form);
  });
})();

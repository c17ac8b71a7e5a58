//! Webhook notifications: a JSON event POSTed to each configured URL when a run fails or ends
//! partial, or when a file under `jobs.d/` becomes invalid. Delivery happens on its own task
//! with retries; a slow or dead receiver never holds up a run or a reconcile pass.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// Attempts per event and receiver, the first included.
const ATTEMPTS: u32 = 4;
/// The wait before the second attempt; it doubles after each failure, with jitter.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// One delivery attempt may take this long.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Events waiting for delivery beyond this are dropped (and logged): memory stays bounded
/// when a receiver is down for long.
const QUEUE: usize = 1000;

/// A receiver of events, as configured.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The events it receives; all of them when empty.
    #[serde(default)]
    pub events: Vec<EventKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "run.failed")]
    RunFailed,
    #[serde(rename = "run.partial")]
    RunPartial,
    #[serde(rename = "file.invalid")]
    FileInvalid,
}

/// One notification.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event: EventKind,
    pub at: DateTime<Utc>,
    /// What happened: the run (job, run ID, status, error, totals) or the file and its errors.
    #[serde(flatten)]
    pub detail: Value,
}

enum Message {
    Event(Event),
    /// Answered once every delivery started before it has ended.
    Flush(oneshot::Sender<()>),
}

/// The sending side; cheap to clone. Without receivers it drops events at once.
#[derive(Clone)]
pub struct Notifier {
    queue: Option<mpsc::Sender<Message>>,
}

impl Notifier {
    /// Starts the delivery task for `hooks`; an empty list starts nothing.
    pub fn start(hooks: Vec<WebhookConfig>) -> Notifier {
        if hooks.is_empty() {
            return Notifier { queue: None };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_all(hooks, rx));
        Notifier { queue: Some(tx) }
    }

    /// A notifier that sends nothing.
    pub fn none() -> Notifier {
        Notifier { queue: None }
    }

    /// Queues an event; never waits.
    pub fn send(&self, event: EventKind, detail: Value) {
        let Some(queue) = &self.queue else { return };
        if queue.try_send(Message::Event(Event { event, at: Utc::now(), detail })).is_err() {
            tracing::warn!(?event, "webhook queue full: event dropped");
        }
    }

    /// Waits up to `within` for queued events to be delivered or given up on: a one-shot
    /// command calls this before it exits, so its events are not lost with the process.
    pub async fn flush(&self, within: Duration) {
        let Some(queue) = &self.queue else { return };
        let (done, wait) = oneshot::channel();
        if queue.send(Message::Flush(done)).await.is_ok()
            && tokio::time::timeout(within, wait).await.is_err()
        {
            tracing::warn!(?within, "webhook deliveries still pending at exit");
        }
    }
}

async fn deliver_all(hooks: Vec<WebhookConfig>, mut rx: mpsc::Receiver<Message>) {
    let client = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: no HTTP client");
            return;
        }
    };
    let mut deliveries = JoinSet::new();
    while let Some(message) = rx.recv().await {
        // Reap finished deliveries so the set stays small.
        while deliveries.try_join_next().is_some() {}
        match message {
            Message::Event(event) => {
                for hook in &hooks {
                    if !hook.events.is_empty() && !hook.events.contains(&event.event) {
                        continue;
                    }
                    // Each receiver on its own task: one that is down does not delay the others.
                    deliveries.spawn(deliver(client.clone(), hook.url.clone(), event.clone()));
                }
            }
            Message::Flush(done) => {
                while deliveries.join_next().await.is_some() {}
                let _ = done.send(());
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(webhook.url = %url, event = ?event.event))]
async fn deliver(client: reqwest::Client, url: String, event: Event) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let outcome = client.post(&url).json(&event).send().await;
        let error = match outcome {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(attempt, "webhook delivered");
                return;
            }
            Ok(response) => format!("answered {}", response.status()),
            Err(e) => e.to_string(),
        };
        if attempt == ATTEMPTS {
            tracing::error!(attempt, error, "webhook not delivered; giving up");
            return;
        }
        tracing::warn!(attempt, error, "webhook not delivered; retrying");
        tokio::time::sleep(jittered(backoff)).await;
        backoff *= 2;
    }
}

/// Between half and all of `base`, so receivers that failed together retry apart.
fn jittered(base: Duration) -> Duration {
    let nanos = Utc::now().timestamp_subsec_nanos() as u64;
    let half = base.as_millis() as u64 / 2;
    Duration::from_millis(half + nanos % (half + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A local receiver that fails the first `failures` requests and records the bodies.
    async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<Value>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            let mut served = 0;
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read headers, then the body by Content-Length.
                loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            let body = &request[end + 4..end + 4 + length];
                            served += 1;
                            let status = if served <= failures {
                                "500 Internal Server Error"
                            } else {
                                "204 No Content"
                            };
                            if served > failures {
                                seen.lock().unwrap().push(serde_json::from_slice(body).unwrap());
                            }
                            let reply = format!(
                                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            );
                            socket.write_all(reply.as_bytes()).await.unwrap();
                            break;
                        }
                    }
                }
            }
        });
        (url, bodies)
    }

    #[tokio::test]
    async fn events_reach_their_receivers_after_retries_and_filters_apply() {
        let (url, bodies) = receiver(2).await;
        let (other, other_bodies) = receiver(0).await;
        let notifier = Notifier::start(vec![
            WebhookConfig { url, events: vec![] },
            WebhookConfig { url: other, events: vec![EventKind::FileInvalid] },
        ]);
        notifier.send(EventKind::RunFailed, serde_json::json!({"job": "manga", "runId": 7}));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while bodies.lock().unwrap().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got = bodies.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "delivered once, after two failures");
        assert_eq!(got[0]["event"], "run.failed");
        assert_eq!(got[0]["job"], "manga");
        assert_eq!(got[0]["runId"], 7);
        assert!(
            other_bodies.lock().unwrap().is_empty(),
            "a receiver of file.invalid only gets no run event"
        );
    }

    #[tokio::test]
    async fn a_dead_receiver_never_blocks_the_sender() {
        let notifier = Notifier::start(vec![WebhookConfig {
            url: "http://127.0.0.1:9/".into(),
            events: vec![],
        }]);
        let started = std::time::Instant::now();
        for i in 0..2000 {
            notifier.send(EventKind::RunPartial, serde_json::json!({ "runId": i }));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "sending is non-blocking even with a full queue"
        );
    }
}

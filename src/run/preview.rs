//! Preview: a run's plan and provider calls on a sample of entries, with nothing written. For
//! every field of every sampled entry it says what a run would do and, when a field would not
//! be written, which layer stops it: the answer to "why did nothing change?".

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::apply::{FieldVerdict, Layer, Verdict, judge};
use super::fetch::Calls;
use super::plan::{Plan, PlanCounts};
use super::{Answer, EntryContext, Fetched, MatchNote, Runner};
use crate::provider::EntityKind;
use crate::store::{JobRow, StoreError};

/// How many entries a preview samples unless told otherwise.
pub const DEFAULT_SAMPLE: usize = 5;

/// Why a preview could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The provider cannot be used for the job (not configured, not started, wrong scope).
    #[error("{0}")]
    Provider(String),
}

/// A preview of one job.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Bumped when a field changes meaning; new fields may appear without a bump.
    pub format_version: u32,
    pub job: String,
    pub provider: String,
    /// The number of entries asked for; fewer are shown when fewer are planned.
    pub sample: usize,
    pub plan: PlanCounts,
    pub entries: Vec<PreviewEntry>,
}

/// One sampled entry.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewEntry {
    pub kind: EntityKind,
    pub entry: String,
    pub title: Option<String>,
    /// The provider's ID for it: stored, or found by the match call.
    pub external_id: Option<String>,
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchNote>,
    /// `update`, `unchanged`, `noMatch` or `failed`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every field of the entry's side; empty when the provider gave no metadata.
    pub fields: Vec<FieldVerdict>,
}

impl Runner {
    /// Plans the job, calls the provider for the first `sample` planned entries (matching
    /// those without an ID, when the job allows it), and reports every field's verdict.
    /// Nothing is written: not the fields, not a matched ID, not `last_synced_at`, not a run.
    #[tracing::instrument(name = "preview", skip_all, fields(job.id = %job.id, job.file = %job.source_file))]
    pub async fn preview(&self, job: &JobRow, sample: usize) -> Result<Preview, PreviewError> {
        let spec = &job.spec;
        let provider = self.provider_for(spec).await.map_err(PreviewError::Provider)?;
        let provider_name = provider.name().to_string();
        let plan = Plan::new(spec, self.entries(spec).await?, chrono::Utc::now());
        let calls = Calls::new(&provider_name, CancellationToken::new()).paced(provider.pace());
        let context = Arc::new(EntryContext {
            provider,
            calls,
            selection: self.selection(spec),
            threshold: self.registry.match_threshold(&provider_name),
        });
        let limit = Arc::new(Semaphore::new(usize::from(spec.max_concurrency.clamp(1, 16))));
        let mut tasks = JoinSet::new();
        for (i, entry) in plan.work.into_iter().take(sample).enumerate() {
            let context = context.clone();
            // Taking the permit before spawning starts the calls in the plan's order.
            let permit =
                limit.clone().acquire_owned().await.expect("the semaphore is never closed");
            tasks.spawn(
                async move {
                    let _permit = permit;
                    (i, context.fetch(entry).await.map(|fetched| context.preview(fetched)))
                }
                .in_current_span(),
            );
        }
        let mut entries: Vec<(usize, PreviewEntry)> = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Some(entry))) => entries.push((i, entry)),
                Ok((_, None)) => {}
                Err(e) => tracing::error!(error = %e, "preview task ended abnormally"),
            }
        }
        entries.sort_by_key(|(i, _)| *i);
        if let Some(reason) = context.calls.gave_up() {
            return Err(PreviewError::Provider(reason));
        }
        Ok(Preview {
            format_version: 1,
            job: job.id.clone(),
            provider: provider_name,
            sample,
            plan: plan.counts,
            entries: entries.into_iter().map(|(_, e)| e).collect(),
        })
    }
}

impl EntryContext {
    fn preview(&self, fetched: Fetched) -> PreviewEntry {
        let Fetched { entry, matched, answer } = fetched;
        let (outcome, error, fields) = match answer {
            Answer::Metadata(metadata) => {
                let fields = judge(&entry, &metadata, &self.selection);
                let changes = fields.iter().any(|f| matches!(f.verdict, Verdict::Change { .. }));
                (if changes { "update" } else { "unchanged" }, None, fields)
            }
            Answer::NoMatch => ("noMatch", None, Vec::new()),
            Answer::Failed(reason) => ("failed", Some(reason), Vec::new()),
        };
        PreviewEntry {
            kind: entry.kind,
            title: entry.title(),
            external_id: entry.external_id.clone(),
            entry: entry.key,
            matched,
            outcome,
            error,
            fields,
        }
    }
}

impl Preview {
    /// The preview as a terminal shows it: per entry, every field that would change (old ->
    /// new), every field left unchanged, and every blocked field under the layer that blocks it.
    pub fn render(&self) -> String {
        let mut out = format!(
            "preview of `{}` with provider `{}`: {} of {} planned entries (candidates {}, skipped: no ID {}, recent {}; to match {})\n",
            self.job,
            self.provider,
            self.entries.len(),
            self.plan.planned,
            self.plan.candidates,
            self.plan.skipped_no_id,
            self.plan.skipped_recent,
            self.plan.to_match,
        );
        out.push_str("nothing is written\n");
        for entry in &self.entries {
            let title = entry.title.as_deref().map(|t| format!(" {t:?}")).unwrap_or_default();
            let id = entry.external_id.as_deref().unwrap_or("-");
            out.push_str(&format!(
                "\n{} {}{title} (ID {id}): {}\n",
                entry.kind.as_str(),
                entry.entry,
                outcome_words(entry.outcome)
            ));
            if let Some(note) = &entry.matched {
                out.push_str(&format!("  match: {}\n", note.describe()));
            }
            if let Some(error) = &entry.error {
                out.push_str(&format!("  error: {error}\n"));
            }
            for field in &entry.fields {
                if let Verdict::Change { before, after } = &field.verdict {
                    out.push_str(&format!("  ~ {}: {before} -> {after}\n", field.field));
                }
            }
            let unchanged = names(&entry.fields, |v| matches!(v, Verdict::Unchanged));
            if !unchanged.is_empty() {
                out.push_str(&format!("  = unchanged: {unchanged}\n"));
            }
            for layer in [
                Layer::Locked,
                Layer::Refused,
                Layer::NotReturned,
                Layer::NotPermitted,
                Layer::OutsideGroups,
            ] {
                let blocked = entry.fields.iter().filter(
                    |f| matches!(&f.verdict, Verdict::Blocked { layer: l, .. } if *l == layer),
                );
                let listed: Vec<String> = blocked
                    .map(|f| match &f.verdict {
                        Verdict::Blocked { detail: Some(detail), .. } => {
                            format!("{} ({detail})", f.field)
                        }
                        _ => f.field.to_string(),
                    })
                    .collect();
                if !listed.is_empty() {
                    out.push_str(&format!("  x {}: {}\n", layer.as_str(), listed.join(", ")));
                }
            }
        }
        if self.entries.is_empty() {
            out.push_str("\nno entry is planned: nothing would be fetched\n");
        }
        out
    }
}

fn outcome_words(outcome: &str) -> &'static str {
    match outcome {
        "update" => "would update",
        "unchanged" => "would leave unchanged",
        "noMatch" => "no confident match, would be skipped",
        _ => "would fail",
    }
}

fn names(fields: &[FieldVerdict], pick: impl Fn(&Verdict) -> bool) -> String {
    let picked: Vec<&str> = fields.iter().filter(|f| pick(&f.verdict)).map(|f| f.field).collect();
    picked.join(", ")
}

//! Filing an employee report: the category must be the policy's, the tenant
//! must exist, the reporter must be within the hourly limit (kept in the
//! store, so it holds across replicas); then the report joins the tenant's
//! open case for the category or opens one, and its URLs are sampled in the
//! background.

use std::sync::Arc;

use crate::domain::{Actor, Case, Report, TenantId};
use crate::policy::PolicyHandle;
use crate::sampling::Sampling;

use super::cases::{CaseService, CommandError};

/// A report as its reporter gave it, already checked for shape (lengths,
/// URL schemes) by whoever parsed it.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// The tenant reported.
    pub tenant: TenantId,
    /// The policy category named.
    pub category: String,
    /// Where the content is: http(s) URLs only.
    pub urls: Vec<url::Url>,
    /// What the reporter saw.
    pub description: String,
}

/// Why a report was not filed. Nothing was written in any case, except
/// that a refused rate check has counted nothing either.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The policy in force has no such category.
    #[error("the policy has no category `{0}`")]
    UnknownCategory(String),
    /// No such tenant.
    #[error("no such tenant")]
    UnknownTenant,
    /// The reporter filed as many reports as an hour allows.
    #[error("at most {0} reports an hour per reporter; try again later")]
    RateLimited(u32),
    /// Joining or opening the case failed.
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// A report filed, with the case it joined or opened.
#[derive(Debug)]
pub struct Filed {
    /// The report as stored (its `case` set).
    pub report: Report,
    /// The case after the report reached it.
    pub case: Case,
}

/// The report use cases.
#[derive(Debug, Clone)]
pub struct Reports {
    cases: CaseService,
    sampling: Arc<Sampling>,
    policy: Arc<PolicyHandle>,
    per_hour: u32,
}

impl Reports {
    /// Report use cases over the case service and the sampling room, with
    /// `per_hour` reports allowed to each reporter an hour.
    pub fn new(
        cases: CaseService,
        sampling: Arc<Sampling>,
        policy: Arc<PolicyHandle>,
        per_hour: u32,
    ) -> Self {
        Reports {
            cases,
            sampling,
            policy,
            per_hour,
        }
    }

    /// Files `new` for `reporter` (acting as `actor`).
    pub async fn file(
        &self,
        actor: &Actor,
        reporter: &str,
        new: NewReport,
    ) -> Result<Filed, ReportError> {
        let severity = self
            .policy
            .current()
            .policy()
            .categories
            .iter()
            .find(|c| c.id == new.category)
            .map(|c| c.severity)
            .ok_or_else(|| ReportError::UnknownCategory(new.category.clone()))?;
        self.sampling
            .get_tenant(&new.tenant)
            .map_err(|_| ReportError::UnknownTenant)?;
        let now = self.cases.clock().now();
        let (who, per_hour) = (reporter.to_string(), self.per_hour);
        let allowed = self
            .cases
            .read("counting a report", move |store| {
                crate::store::rate::take_report_slot(store, &who, per_hour, now)
            })
            .await
            .map_err(CommandError::Store)?;
        if !allowed {
            return Err(ReportError::RateLimited(self.per_hour));
        }

        let mut report = Report {
            id: format!("rep_{}", uuid::Uuid::now_v7().simple()),
            reporter: reporter.to_string(),
            tenant: new.tenant.clone(),
            category: new.category,
            urls: new.urls.iter().map(ToString::to_string).collect(),
            description: new.description,
            created_at: now,
            case: None,
        };
        let transition = self.cases.file_report(actor, &mut report, severity).await?;

        // The report is stored and on its case; sampling its URLs is extra
        // evidence that may come later, and a failure there is only logged.
        let sampling = self.sampling.clone();
        let (tenant, urls) = (new.tenant, new.urls);
        tokio::spawn(async move {
            if let Err(e) = sampling.targeted(&tenant, urls).await {
                tracing::warn!(tenant = %tenant, error = %e, "sampling a report's URLs failed");
            }
        });
        Ok(Filed {
            report,
            case: transition.case,
        })
    }

    /// The reports `reporter` filed, each with its case as it stands now.
    pub async fn of_reporter(&self, reporter: &str) -> anyhow::Result<Vec<(Report, Option<Case>)>> {
        let all = self
            .cases
            .read("listing reports", |store| store.reports())
            .await?;
        let mut out = Vec::new();
        for r in all.into_iter().filter(|r| r.reporter == reporter) {
            let case = match r.case.as_deref().map(uuid::Uuid::parse_str) {
                Some(Ok(id)) => self.cases.get(&crate::domain::CaseId(id)).await?,
                _ => None,
            };
            out.push((r, case));
        }
        Ok(out)
    }
}

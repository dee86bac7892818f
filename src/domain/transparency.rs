//! Transparency counts over a window (DSA Art. 15 and 24): notices
//! received, actions taken, automation, time from notice to action,
//! appeals and reinstatements. Computed purely from cases and reports.

use std::collections::BTreeMap;

use jiff::{civil::Date, Timestamp};
use serde::Serialize;

use super::case::{AppealOutcome, Case, CaseState};
use super::outbox::Report;

/// A half-open window `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant counted.
    pub from: Timestamp,
    /// First instant no longer counted.
    pub to: Timestamp,
}

impl Window {
    /// The window between `from` and `to`, each an RFC 3339 timestamp or a
    /// `YYYY-MM-DD` date (midnight UTC at its start); or the message naming
    /// what is wrong.
    pub fn parse(from: &str, to: &str) -> Result<Window, String> {
        let from = bound("from", from)?;
        let to = bound("to", to)?;
        if from >= to {
            return Err(format!("`from` ({from}) must be before `to` ({to})"));
        }
        Ok(Window { from, to })
    }

    /// Whether `t` lies inside.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.from <= t && t < self.to
    }
}

fn bound(name: &str, raw: &str) -> Result<Timestamp, String> {
    let raw = raw.trim();
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Ok(t);
    }
    raw.parse::<Date>()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or_else(|| {
            format!(
                "`{name}` must be a date (YYYY-MM-DD) or an RFC 3339 timestamp, not `{}`",
                raw.chars().take(40).collect::<String>()
            )
        })
}

/// Employee reports received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NoticeCounts {
    /// All of them.
    pub total: usize,
    /// Per AUP category.
    pub by_category: BTreeMap<String, usize>,
}

/// Restrictions decided (statements of reasons issued).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ActionCounts {
    /// All of them.
    pub total: usize,
    /// Per restriction (`removal_notice`, `suspension`).
    pub by_type: BTreeMap<String, usize>,
    /// Per AUP category relied on (an action on two grounds counts for both).
    pub by_ground: BTreeMap<String, usize>,
}

/// Automated means among the actions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AutomationCounts {
    /// Actions on content aupd's scoring detected.
    pub detected: usize,
    /// Actions no person decided.
    pub decided: usize,
    /// `detected / actions` (0 with no actions).
    pub detected_share: f64,
    /// `decided / actions` (0 with no actions).
    pub decided_share: f64,
}

/// Appeals (internal complaints).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AppealCounts {
    /// Made in the window.
    pub received: usize,
    /// Granted in the window.
    pub granted: usize,
    /// Denied in the window.
    pub denied: usize,
    /// Made in the window and not decided yet.
    pub pending: usize,
}

/// The counts of one window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TransparencyReport {
    /// First instant counted.
    pub from: Timestamp,
    /// First instant no longer counted.
    pub to: Timestamp,
    /// Employee reports received.
    pub notices: NoticeCounts,
    /// Restrictions decided.
    pub actions: ActionCounts,
    /// Automated means among them.
    pub automated: AutomationCounts,
    /// Actions in the window on cases that followed a notice.
    pub actions_after_notice: usize,
    /// Median seconds from a case's first notice to its first action, over
    /// those; `null` when there are none.
    pub median_seconds_notice_to_action: Option<i64>,
    /// Appeals.
    pub appeals: AppealCounts,
    /// Suspensions lifted in the window.
    pub reinstatements: usize,
}

/// The counts of `window` over every case and report.
pub fn count(window: Window, cases: &[Case], reports: &[Report]) -> TransparencyReport {
    let mut notices = NoticeCounts::default();
    let mut first_notice: BTreeMap<String, Timestamp> = BTreeMap::new();
    for r in reports {
        if window.contains(r.created_at) {
            notices.total += 1;
            *notices.by_category.entry(r.category.clone()).or_default() += 1;
        }
        if let Some(case) = &r.case {
            let first = first_notice.entry(case.clone()).or_insert(r.created_at);
            *first = (*first).min(r.created_at);
        }
    }
    let mut actions = ActionCounts::default();
    let mut automated = AutomationCounts::default();
    let mut delays = Vec::new();
    let mut appeals = AppealCounts::default();
    let mut reinstatements = 0;
    for case in cases {
        for s in case
            .statements
            .iter()
            .filter(|s| window.contains(s.issued_at))
        {
            actions.total += 1;
            *actions
                .by_type
                .entry(s.restriction.as_str().to_string())
                .or_default() += 1;
            for g in &s.grounds {
                *actions.by_ground.entry(g.category.clone()).or_default() += 1;
            }
            automated.detected += usize::from(s.automation.detected_automatically);
            automated.decided += usize::from(s.automation.decided_automatically);
        }
        // The first action on a case that followed a notice, if it falls in the window.
        if !case.reports.is_empty() {
            if let Some(first) = case.statements.first() {
                if window.contains(first.issued_at) {
                    let noticed = first_notice
                        .get(&case.id.to_string())
                        .copied()
                        .unwrap_or(case.created_at);
                    delays.push(first.issued_at.as_second() - noticed.as_second());
                }
            }
        }
        for a in &case.appeals {
            if window.contains(a.at) {
                appeals.received += 1;
                appeals.pending += usize::from(a.outcome.is_none());
            }
            if a.decided_at.is_some_and(|t| window.contains(t)) {
                match a.outcome {
                    Some(AppealOutcome::Granted) => appeals.granted += 1,
                    Some(AppealOutcome::Denied) => appeals.denied += 1,
                    None => {}
                }
            }
        }
        // A final case changes no more: its last update is the reinstatement.
        if case.state == CaseState::Reinstated && window.contains(case.updated_at) {
            reinstatements += 1;
        }
    }
    if actions.total > 0 {
        automated.detected_share = automated.detected as f64 / actions.total as f64;
        automated.decided_share = automated.decided as f64 / actions.total as f64;
    }
    TransparencyReport {
        from: window.from,
        to: window.to,
        notices,
        actions,
        automated,
        actions_after_notice: delays.len(),
        median_seconds_notice_to_action: median(&mut delays),
        appeals,
        reinstatements,
    }
}

fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2
    } else {
        values[mid]
    })
}

/// The report as CSV: `section,key,value`, one count a row.
pub fn to_csv(r: &TransparencyReport) -> String {
    let mut rows: Vec<(String, String, String)> = vec![
        ("window".into(), "from".into(), r.from.to_string()),
        ("window".into(), "to".into(), r.to.to_string()),
        (
            "notices".into(),
            "total".into(),
            r.notices.total.to_string(),
        ),
    ];
    for (k, v) in &r.notices.by_category {
        rows.push(("notices_by_category".into(), k.clone(), v.to_string()));
    }
    rows.push((
        "actions".into(),
        "total".into(),
        r.actions.total.to_string(),
    ));
    for (k, v) in &r.actions.by_type {
        rows.push(("actions_by_type".into(), k.clone(), v.to_string()));
    }
    for (k, v) in &r.actions.by_ground {
        rows.push(("actions_by_ground".into(), k.clone(), v.to_string()));
    }
    for (k, v) in [
        ("detected", r.automated.detected.to_string()),
        ("decided", r.automated.decided.to_string()),
        (
            "detected_share",
            format!("{:.4}", r.automated.detected_share),
        ),
        ("decided_share", format!("{:.4}", r.automated.decided_share)),
    ] {
        rows.push(("automated".into(), k.into(), v));
    }
    rows.push((
        "notice_to_action".into(),
        "actions_after_notice".into(),
        r.actions_after_notice.to_string(),
    ));
    rows.push((
        "notice_to_action".into(),
        "median_seconds".into(),
        r.median_seconds_notice_to_action
            .map(|s| s.to_string())
            .unwrap_or_default(),
    ));
    for (k, v) in [
        ("received", r.appeals.received),
        ("granted", r.appeals.granted),
        ("denied", r.appeals.denied),
        ("pending", r.appeals.pending),
    ] {
        rows.push(("appeals".into(), k.into(), v.to_string()));
    }
    rows.push((
        "reinstatements".into(),
        "total".into(),
        r.reinstatements.to_string(),
    ));
    let mut out = String::from("section,key,value\n");
    for (s, k, v) in rows {
        out.push_str(&format!("{},{},{}\n", field(&s), field(&k), field(&v)));
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::statement::{build, PolicyClauses, Restriction};
    use crate::domain::{
        ActorKind, Appeal, CaseId, EvidenceKind, EvidenceRef, ReportRef, Severity, TenantId,
    };

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn case(reported: bool, opened: &str) -> Case {
        Case {
            id: CaseId::new(),
            tenant: TenantId::try_from("parlor".to_string()).unwrap(),
            categories: vec!["hate-speech".into()],
            severity: Severity::High,
            state: CaseState::Noticed,
            owner: None,
            evidence: if reported {
                Vec::new()
            } else {
                vec![EvidenceRef {
                    kind: EvidenceKind::Finding {
                        finding_id: "f".into(),
                        score: 0.9,
                    },
                    category: "hate-speech".into(),
                    url: None,
                    policy_version: None,
                }]
            },
            reports: if reported {
                vec![ReportRef {
                    report_id: "r".into(),
                    reporter: "rita".into(),
                }]
            } else {
                Vec::new()
            },
            plan: None,
            suspension: None,
            approvals: Vec::new(),
            deadline: None,
            reminders: Vec::new(),
            paused_remaining: None,
            appeals: Vec::new(),
            participants: Vec::new(),
            statements: Vec::new(),
            version: 1,
            created_at: at(opened),
            updated_at: at(opened),
        }
    }

    fn act(c: &mut Case, r: Restriction, by: ActorKind, when: &str) {
        let s = build(c, r, by, &PolicyClauses::default(), at(when));
        c.statements.push(s);
    }

    fn report(case: &Case, category: &str, when: &str) -> Report {
        Report {
            id: "r".into(),
            reporter: "rita".into(),
            tenant: case.tenant.clone(),
            category: category.into(),
            urls: Vec::new(),
            description: String::new(),
            created_at: at(when),
            case: Some(case.id.to_string()),
        }
    }

    #[test]
    fn counts_fall_in_the_window_and_the_median_runs_from_notice_to_action() {
        let mut reported = case(true, "2026-03-01T00:00:00Z");
        act(
            &mut reported,
            Restriction::RemovalNotice,
            ActorKind::Operator,
            "2026-03-01T02:00:00Z",
        );
        act(
            &mut reported,
            Restriction::Suspension,
            ActorKind::System,
            "2026-03-02T00:00:00Z",
        );
        let mut reported2 = case(true, "2026-03-05T00:00:00Z");
        act(
            &mut reported2,
            Restriction::RemovalNotice,
            ActorKind::Operator,
            "2026-03-05T04:00:00Z",
        );
        reported2.appeals.push(Appeal {
            text: "no".into(),
            at: at("2026-03-06T00:00:00Z"),
            outcome: Some(AppealOutcome::Granted),
            decided_by: Some("alice".into()),
            decision_reason: Some("yes".into()),
            decided_at: Some(at("2026-03-07T00:00:00Z")),
        });
        reported2.state = CaseState::Reinstated;
        reported2.updated_at = at("2026-03-07T00:00:00Z");
        let mut sampled = case(false, "2026-03-03T00:00:00Z");
        act(
            &mut sampled,
            Restriction::RemovalNotice,
            ActorKind::Service,
            "2026-03-03T00:00:00Z",
        );
        let mut outside = case(false, "2026-05-01T00:00:00Z");
        act(
            &mut outside,
            Restriction::RemovalNotice,
            ActorKind::Service,
            "2026-05-01T00:00:00Z",
        );
        let reports = vec![
            report(&reported, "hate-speech", "2026-03-01T00:00:00Z"),
            report(&reported2, "harassment", "2026-03-05T00:00:00Z"),
            report(&outside, "harassment", "2026-05-01T00:00:00Z"),
        ];
        let cases = [reported, reported2, sampled, outside];
        let r = count(
            Window::parse("2026-03-01", "2026-04-01").unwrap(),
            &cases,
            &reports,
        );
        assert_eq!(r.notices.total, 2);
        assert_eq!(r.notices.by_category["harassment"], 1);
        assert_eq!(r.actions.total, 4);
        assert_eq!(r.actions.by_type["removal_notice"], 3);
        assert_eq!(r.actions.by_type["suspension"], 1);
        assert_eq!(r.actions.by_ground["hate-speech"], 4);
        // Only the sampled case was detected by scoring; the suspension by
        // the ticker and the automatic notice were decided by no person.
        assert_eq!(r.automated.detected, 1);
        assert_eq!(r.automated.decided, 2);
        assert_eq!(r.automated.decided_share, 0.5);
        // 2 h and 4 h from report to first action.
        assert_eq!(r.actions_after_notice, 2);
        assert_eq!(r.median_seconds_notice_to_action, Some(3 * 3600));
        assert_eq!(r.appeals.received, 1);
        assert_eq!(r.appeals.granted, 1);
        assert_eq!(r.appeals.pending, 0);
        assert_eq!(r.reinstatements, 1);

        let csv = to_csv(&r);
        assert!(csv.starts_with("section,key,value\n"), "{csv}");
        assert!(csv.contains("actions_by_type,suspension,1\n"), "{csv}");
        assert!(
            csv.contains("notice_to_action,median_seconds,10800\n"),
            "{csv}"
        );
    }

    #[test]
    fn an_empty_window_has_zero_counts_and_no_median() {
        let r = count(Window::parse("2026-01-01", "2026-01-02").unwrap(), &[], &[]);
        assert_eq!(r.actions.total, 0);
        assert_eq!(r.automated.detected_share, 0.0);
        assert_eq!(r.median_seconds_notice_to_action, None);
    }

    #[test]
    fn bad_bounds_are_named() {
        assert_eq!(
            Window::parse("yesterday", "2026-01-02").unwrap_err(),
            "`from` must be a date (YYYY-MM-DD) or an RFC 3339 timestamp, not `yesterday`"
        );
        assert_eq!(
            Window::parse("2026-01-02", "2026-01-01").unwrap_err(),
            "`from` (2026-01-02T00:00:00Z) must be before `to` (2026-01-01T00:00:00Z)"
        );
        assert!(Window::parse("2026-01-01T10:00:00Z", "2026-01-01T11:00:00+00:00").is_ok());
        assert!(Window::parse("2026-02-30", "2026-03-01").is_err());
    }
}

//! Which decisions restrict a tenant, and the statement of reasons each
//! one carries: added to the case and to the webhook that announces it, so
//! both commit in the transition's one transaction. Pure, like `decide`.

use jiff::Timestamp;

use crate::domain::statement::{build, PolicyClauses, Restriction};
use crate::domain::{Actor, Transition};

/// The restriction a queued webhook announces, if it announces one: a
/// notice (first, or repeated after a rejected plan or failed
/// verification) or a suspension order.
fn restriction_of(event_type: &str) -> Option<Restriction> {
    match event_type {
        "case.notice_sent" => Some(Restriction::RemovalNotice),
        "enforcement.suspend" => Some(Restriction::Suspension),
        _ => None,
    }
}

/// Adds a statement of reasons to `transition` for every restriction it
/// decides: kept on the case and carried as `statement` in the webhook's
/// payload (receivers that do not know the field ignore it).
pub fn attach(transition: &mut Transition, actor: &Actor, clauses: &PolicyClauses, now: Timestamp) {
    for message in &mut transition.outbox {
        let Some(restriction) = restriction_of(&message.event_type) else {
            continue;
        };
        let statement = build(&transition.case, restriction, actor.kind, clauses, now);
        if let serde_json::Value::Object(payload) = &mut message.payload {
            if let Ok(value) = serde_json::to_value(&statement) {
                payload.insert("statement".into(), value);
            }
        }
        transition.case.statements.push(statement);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ActorKind, CaseId, Command, EvidenceKind, EvidenceRef, Severity, TenantId,
    };
    use crate::enforcement::{decide, Ladders};

    #[test]
    fn an_automatic_opening_carries_one_notice_statement_on_the_case_and_its_webhook() {
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let open = Command::Open {
            case_id: CaseId(uuid::Uuid::nil()),
            tenant: TenantId::try_from("parlor".to_string()).unwrap(),
            categories: vec!["violent-incitement".into()],
            severity: Severity::Critical,
            evidence: vec![EvidenceRef {
                kind: EvidenceKind::Finding {
                    finding_id: "f".into(),
                    score: 0.9,
                },
                category: "violent-incitement".into(),
                url: Some("https://parlor.example/p/1".into()),
                policy_version: Some("v".into()),
            }],
            report: None,
        };
        let actor = Actor::new(ActorKind::Service, "sampler");
        let mut t = decide(None, &actor, &open, &Ladders::default(), now).unwrap();
        attach(&mut t, &actor, &PolicyClauses::default(), now);
        assert_eq!(t.case.statements.len(), 1);
        let s = &t.case.statements[0];
        assert_eq!(s.restriction, Restriction::RemovalNotice);
        assert_eq!(
            s.decision.deadline,
            t.case.deadline.as_ref().map(|d| d.due_at)
        );
        let notice = t
            .outbox
            .iter()
            .find(|m| m.event_type == "case.notice_sent")
            .unwrap();
        assert_eq!(notice.payload["statement"]["id"], s.id);
        // The existing fields stay as receivers know them.
        assert_eq!(notice.payload["version"], 1);
        assert!(notice.payload.get("due_at").is_some());
        let opened = t
            .outbox
            .iter()
            .find(|m| m.event_type == "case.opened")
            .unwrap();
        assert!(opened.payload.get("statement").is_none());
    }

    #[test]
    fn a_case_opened_for_triage_has_no_statement() {
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let open = Command::Open {
            case_id: CaseId(uuid::Uuid::nil()),
            tenant: TenantId::try_from("parlor".to_string()).unwrap(),
            categories: vec!["harassment".into()],
            severity: Severity::Medium,
            evidence: Vec::new(),
            report: Some(crate::domain::ReportRef {
                report_id: "r".into(),
                reporter: "olga".into(),
            }),
        };
        let actor = Actor::new(ActorKind::Operator, "olga");
        let mut t = decide(None, &actor, &open, &Ladders::default(), now).unwrap();
        attach(&mut t, &actor, &PolicyClauses::default(), now);
        assert!(t.case.statements.is_empty());
    }
}

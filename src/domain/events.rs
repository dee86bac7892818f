//! Domain events that link work across rooms: one room records them in the
//! event log with its transition, another follows the log and acts on them.
//! Consumers match on [`DomainEvent`] rather than on kind strings. The
//! stored kind strings and data stay exactly as written (the audit chain
//! hashes them); this is only a typed reading of them.

use super::{CaseId, TenantId};

/// An event another room acts on, read from the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    /// Evidence about a tenant crossed a category's case rule and a
    /// threshold was raised (`evidence.threshold_crossed`). The enforcement
    /// worker opens a case from it.
    ThresholdCrossed {
        /// The tenant.
        tenant: TenantId,
        /// The policy category.
        category: String,
    },
    /// A suspension order got no receipt by its deadline
    /// (`case.receipt_overdue`). The delivery alert watcher raises an
    /// operator alert from it.
    ReceiptOverdue {
        /// The case whose order is overdue.
        case: CaseId,
    },
    /// An event of a kind above whose data could not be read (it names no
    /// tenant, category or case): nothing acts on it.
    Malformed {
        /// Its kind as stored.
        kind: String,
    },
    /// Any other event: recorded for the audit log, not acted on by
    /// another room.
    Other,
}

impl DomainEvent {
    /// The stored kind of [`DomainEvent::ThresholdCrossed`].
    pub const THRESHOLD_CROSSED: &'static str = "evidence.threshold_crossed";
    /// The stored kind of [`DomainEvent::ReceiptOverdue`] (a case event of
    /// kind `receipt_overdue`, stored under the `case.` prefix).
    pub const RECEIPT_OVERDUE: &'static str = "case.receipt_overdue";

    /// Reads an event from its stored kind, tenant and data.
    pub fn parse(kind: &str, tenant: Option<&str>, data: &serde_json::Value) -> DomainEvent {
        let malformed = || DomainEvent::Malformed {
            kind: kind.to_string(),
        };
        match kind {
            Self::THRESHOLD_CROSSED => {
                let tenant = tenant.and_then(|t| TenantId::try_from(t).ok());
                let category = data.get("category").and_then(|c| c.as_str());
                match (tenant, category) {
                    (Some(tenant), Some(category)) => DomainEvent::ThresholdCrossed {
                        tenant,
                        category: category.to_string(),
                    },
                    _ => malformed(),
                }
            }
            Self::RECEIPT_OVERDUE => {
                match data
                    .get("case")
                    .and_then(|c| serde_json::from_value::<CaseId>(c.clone()).ok())
                {
                    Some(case) => DomainEvent::ReceiptOverdue { case },
                    None => malformed(),
                }
            }
            _ => DomainEvent::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_events_that_link_rooms_are_read_from_their_stored_form() {
        assert_eq!(
            DomainEvent::parse(
                "evidence.threshold_crossed",
                Some("parlor"),
                &json!({"tenant": "parlor", "category": "spam", "reason": "prevalence"}),
            ),
            DomainEvent::ThresholdCrossed {
                tenant: TenantId::try_from("parlor").unwrap(),
                category: "spam".into(),
            }
        );
        let case = CaseId(uuid::Uuid::now_v7());
        assert_eq!(
            DomainEvent::parse(
                "case.receipt_overdue",
                Some("parlor"),
                &json!({"case": case, "version": 4, "kind": "receipt_overdue"}),
            ),
            DomainEvent::ReceiptOverdue { case }
        );
        assert_eq!(
            DomainEvent::parse("case.opened", Some("parlor"), &json!({"case": case})),
            DomainEvent::Other
        );
    }

    #[test]
    fn a_known_kind_without_its_data_is_malformed_not_misread() {
        assert_eq!(
            DomainEvent::parse(
                "evidence.threshold_crossed",
                None,
                &json!({"category": "spam"})
            ),
            DomainEvent::Malformed {
                kind: "evidence.threshold_crossed".into()
            }
        );
        assert_eq!(
            DomainEvent::parse("case.receipt_overdue", None, &json!({"case": "nope"})),
            DomainEvent::Malformed {
                kind: "case.receipt_overdue".into()
            }
        );
    }
}

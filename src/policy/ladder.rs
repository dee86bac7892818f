//! Escalation ladders: per severity, how a case opens, how long the tenant has
//! to cure it, when to remind them, what a missed deadline does and how many
//! people must approve a suspension.
//!
//! Ladders live in `policies/escalation/ladders.toml` (a subdirectory, so the
//! category files, which are the top-level `*.toml`, do not include it).
//! [`load_dir`](super::load_dir) reads the file with the categories, so the
//! policy version covers it and a reload swaps both at once. Parsing is
//! strict: unknown keys, missing tables and out-of-range values are errors
//! with their line.

use std::fmt;

use jiff::SignedDuration;
use serde::Deserialize;
use toml::Spanned;

use crate::domain::Severity;

/// How a case at this severity comes to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Opening {
    /// The sampler's evidence opens the case and notifies the tenant at once,
    /// so the cure clock starts without waiting for triage.
    Automatically,
    /// Only an operator (or a report an operator triages) opens it.
    ByOperator,
}

/// What a missed cure deadline does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMiss {
    /// Propose suspending the tenant; with 0 approvals the order goes out at once.
    ProposeSuspension,
    /// Mark the case escalated and leave the next step to an operator.
    ReturnToOperator,
}

/// The ladder for one severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// How a case opens.
    pub opens: Opening,
    /// Time from notice to cure deadline.
    pub cure_window: SignedDuration,
    /// Reminders, as time before the deadline, longest first.
    pub reminders: Vec<SignedDuration>,
    /// What a missed deadline does.
    pub on_miss: OnMiss,
    /// Distinct approvers a suspension needs: 0 (automatic), 1 or 2 (four eyes).
    pub approvals: u8,
}

/// One ladder per severity, plus settings shared by all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladders {
    /// How long the executor has to confirm a suspension order.
    pub receipt_timeout: SignedDuration,
    /// Critical.
    pub critical: Ladder,
    /// High.
    pub high: Ladder,
    /// Medium.
    pub medium: Ladder,
    /// Low.
    pub low: Ladder,
}

impl Ladders {
    /// The ladder for `severity`.
    pub fn get(&self, severity: Severity) -> &Ladder {
        match severity {
            Severity::Critical => &self.critical,
            Severity::High => &self.high,
            Severity::Medium => &self.medium,
            Severity::Low => &self.low,
        }
    }

    /// Parses the ladders file format (see `policies/escalation/ladders.toml`).
    pub fn from_toml_str(text: &str) -> Result<Ladders, LadderError> {
        let raw: RawLadders = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(text, s.start));
            match missing_field(e.message()) {
                Some(table @ ("critical" | "high" | "medium" | "low")) => LadderError {
                    line,
                    key: table.to_string(),
                    message: format!(
                        "missing table [{table}]: the file needs one table per severity \
                         (critical, high, medium, low)"
                    ),
                },
                _ => LadderError {
                    line,
                    key: String::new(),
                    message: e.message().to_string(),
                },
            }
        })?;
        Ok(Ladders {
            receipt_timeout: positive(text, "receipt_timeout", &raw.receipt_timeout)?,
            critical: raw.critical.into_ladder(text, "critical")?,
            high: raw.high.into_ladder(text, "high")?,
            medium: raw.medium.into_ladder(text, "medium")?,
            low: raw.low.into_ladder(text, "low")?,
        })
    }
}

impl Default for Ladders {
    /// The shipped ladders; `policies/escalation/ladders.toml` says the same.
    fn default() -> Self {
        let h = SignedDuration::from_hours;
        let m = SignedDuration::from_mins;
        Ladders {
            receipt_timeout: h(1),
            critical: Ladder {
                opens: Opening::Automatically,
                cure_window: h(1),
                reminders: vec![m(30), m(10)],
                on_miss: OnMiss::ProposeSuspension,
                approvals: 2,
            },
            high: Ladder {
                opens: Opening::Automatically,
                cure_window: h(24),
                reminders: vec![h(4), h(1)],
                on_miss: OnMiss::ProposeSuspension,
                approvals: 2,
            },
            medium: Ladder {
                opens: Opening::ByOperator,
                cure_window: h(72),
                reminders: vec![h(24)],
                on_miss: OnMiss::ReturnToOperator,
                approvals: 1,
            },
            low: Ladder {
                opens: Opening::ByOperator,
                cure_window: h(7 * 24),
                reminders: vec![],
                on_miss: OnMiss::ReturnToOperator,
                approvals: 1,
            },
        }
    }
}

/// Why a ladders file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LadderError {
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// Dotted key, when known.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LadderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLadders {
    receipt_timeout: Spanned<String>,
    critical: RawLadder,
    high: RawLadder,
    medium: RawLadder,
    low: RawLadder,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLadder {
    opens: Opening,
    cure_window: Spanned<String>,
    #[serde(default)]
    reminders: Vec<Spanned<String>>,
    on_miss: OnMiss,
    approvals: Spanned<u8>,
}

impl RawLadder {
    fn into_ladder(self, text: &str, name: &str) -> Result<Ladder, LadderError> {
        let cure_window = positive(text, &format!("{name}.cure_window"), &self.cure_window)?;
        let mut reminders = Vec::with_capacity(self.reminders.len());
        for r in &self.reminders {
            let key = format!("{name}.reminders");
            let before = positive(text, &key, r)?;
            if before >= cure_window {
                return Err(error_at(
                    text,
                    r.span().start,
                    &key,
                    format!("reminder {:?} is not inside the cure window", r.get_ref()),
                ));
            }
            if reminders.contains(&before) {
                return Err(error_at(
                    text,
                    r.span().start,
                    &key,
                    format!("reminder {:?} is listed twice", r.get_ref()),
                ));
            }
            reminders.push(before);
        }
        // Longest first, so reminders read in the order they fire.
        reminders.sort_by(|a, b| b.cmp(a));
        let approvals = *self.approvals.get_ref();
        if approvals > 2 {
            return Err(error_at(
                text,
                self.approvals.span().start,
                &format!("{name}.approvals"),
                "must be 0 (automatic), 1 or 2 (four eyes)".to_string(),
            ));
        }
        Ok(Ladder {
            opens: self.opens,
            cure_window,
            reminders,
            on_miss: self.on_miss,
            approvals,
        })
    }
}

fn positive(text: &str, key: &str, value: &Spanned<String>) -> Result<SignedDuration, LadderError> {
    parse_duration(value.get_ref())
        .ok_or_else(|| {
            error_at(
                text,
                value.span().start,
                key,
                format!(
                    "{:?} is not a duration: write a positive whole number and a unit, like \"90s\", \"30m\", \"24h\" or \"7d\"",
                    value.get_ref()
                ),
            )
        })
}

/// `<n>s|m|h|d` with n > 0; a day is exactly 24 hours (cure windows are
/// elapsed time, not calendar days).
pub fn parse_duration(text: &str) -> Option<SignedDuration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let secs = match unit {
        's' => Some(n),
        'm' => n.checked_mul(60),
        'h' => n.checked_mul(3600),
        'd' => n.checked_mul(86_400),
        _ => None,
    }?;
    // Longer than ten years is a typo, and keeps timestamp arithmetic in range.
    (secs > 0 && secs <= 10 * 365 * 86_400).then(|| SignedDuration::from_secs(secs))
}

/// The field a serde "missing field `x`" message names.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

fn error_at(text: &str, offset: usize, key: &str, message: String) -> LadderError {
    LadderError {
        line: line_of(text, offset),
        key: key.to_string(),
        message,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../policies/escalation/ladders.toml");

    #[test]
    fn shipped_ladders_file_parses_to_the_default_ladders() {
        let parsed = Ladders::from_toml_str(SHIPPED).unwrap();
        assert_eq!(parsed, Ladders::default());
    }

    #[test]
    fn shipped_ladders_say_what_the_policy_promises() {
        let l = Ladders::default();
        assert_eq!(l.critical.cure_window, SignedDuration::from_hours(1));
        assert_eq!(
            l.critical.reminders,
            vec![SignedDuration::from_mins(30), SignedDuration::from_mins(10)]
        );
        assert_eq!(l.critical.approvals, 2);
        assert_eq!(l.high.cure_window, SignedDuration::from_hours(24));
        assert_eq!(l.medium.on_miss, OnMiss::ReturnToOperator);
        assert_eq!(l.medium.opens, Opening::ByOperator);
        assert_eq!(l.low.cure_window, SignedDuration::from_hours(168));
        assert!(l.low.reminders.is_empty());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let text = SHIPPED.replace(
            "on_miss = \"return_to_operator\"\napprovals = 1\n\n[low]",
            "on_miss = \"return_to_operator\"\napprovals = 1\nsnooze = true\n\n[low]",
        );
        assert_ne!(text, SHIPPED, "fixture did not change the file");
        let err = Ladders::from_toml_str(&text).unwrap_err();
        assert!(err.message.contains("snooze"), "{err}");
        let expected = text.lines().position(|l| l.starts_with("snooze")).unwrap() + 1;
        assert_eq!(err.line, expected);
    }

    #[test]
    fn bad_durations_and_approval_counts_name_key_and_line() {
        let text = SHIPPED.replacen("cure_window = \"1h\"", "cure_window = \"1 hour\"", 1);
        let err = Ladders::from_toml_str(&text).unwrap_err();
        assert_eq!(err.key, "critical.cure_window");
        let expected = text.lines().position(|l| l.contains("1 hour")).unwrap() + 1;
        assert_eq!(err.line, expected);

        let text = SHIPPED.replacen("approvals = 2", "approvals = 3", 1);
        let err = Ladders::from_toml_str(&text).unwrap_err();
        assert_eq!(err.key, "critical.approvals");

        let text = SHIPPED.replacen("\"30m\"", "\"2h\"", 1);
        let err = Ladders::from_toml_str(&text).unwrap_err();
        assert!(err.message.contains("not inside the cure window"), "{err}");
    }

    #[test]
    fn durations_are_whole_numbers_with_a_unit() {
        assert_eq!(parse_duration("90s"), Some(SignedDuration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Some(SignedDuration::from_hours(168)));
        for bad in [
            "",
            "h",
            "0h",
            "-1h",
            "1.5h",
            "1w",
            "1 h",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}

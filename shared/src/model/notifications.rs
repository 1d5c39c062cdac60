//! What a user wants to be told about when they are not looking: per conversation (all messages, mentions only,
//! nothing, for a while or for good) and overall (do not disturb until, previews). Stored on the server so that
//! every device of the user, and the push worker, honours the same choice.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// Which messages of a conversation notify the member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyLevel {
    #[default]
    All,
    Mentions,
    None,
}

/// A member's notification setting for one conversation: `level`, and until when a quieter level holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConversationNotifications {
    pub level: NotifyLevel,
    /// When `level` falls back to `all` (ISO-8601 UTC); `None`: until changed.
    #[serde(default)]
    pub until: Option<String>,
}

impl ConversationNotifications {
    /// Checks the request and normalises `until` to the wire's timestamp form. A time that has passed or a
    /// time with `all` (which has nothing to fall back from) is refused rather than silently dropped.
    pub fn validated(self, now: DateTime<Utc>) -> AppResult<Self> {
        let until = self.until.as_deref().map(|until| future_time("until", until, now)).transpose()?;
        if until.is_some() && self.level == NotifyLevel::All {
            return Err(AppError::Validation("until goes with level mentions or none".into()));
        }
        Ok(ConversationNotifications { level: self.level, until })
    }

    /// The setting in force at `now`: a quieter level whose time has passed is `all` again.
    pub fn effective(&self, now: &str) -> ConversationNotifications {
        match &self.until {
            Some(until) if until.as_str() <= now => ConversationNotifications::default(),
            _ => self.clone(),
        }
    }
}

/// A user's notification preferences across conversations: `GET`/`PUT /users/me/notifications`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationPreferences {
    /// No notification at all until then (ISO-8601 UTC); `None`: not set.
    #[serde(default)]
    pub do_not_disturb_until: Option<String>,
    /// Whether a notification shows the message's text (`true` by default) or only who wrote where.
    #[serde(default = "previews_by_default")]
    pub previews: bool,
}

fn previews_by_default() -> bool {
    true
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        NotificationPreferences { do_not_disturb_until: None, previews: true }
    }
}

impl NotificationPreferences {
    pub fn validated(self, now: DateTime<Utc>) -> AppResult<Self> {
        let do_not_disturb_until = self
            .do_not_disturb_until
            .as_deref()
            .map(|until| future_time("doNotDisturbUntil", until, now))
            .transpose()?;
        Ok(NotificationPreferences { do_not_disturb_until, ..self })
    }

    /// The preferences in force at `now`: a do-not-disturb whose time has passed is gone.
    pub fn effective(&self, now: &str) -> NotificationPreferences {
        let do_not_disturb_until = self.do_not_disturb_until.clone().filter(|until| until.as_str() > now);
        NotificationPreferences { do_not_disturb_until, ..self.clone() }
    }
}

/// An RFC 3339 time after `now`, in the wire's form (UTC, milliseconds) so stored times compare as strings.
fn future_time(field: &str, value: &str, now: DateTime<Utc>) -> AppResult<String> {
    let time = DateTime::parse_from_rfc3339(value)
        .map_err(|_| AppError::Validation(format!("{field} must be an RFC 3339 time such as 2030-01-01T08:00:00Z")))?
        .with_timezone(&Utc);
    if time <= now {
        return Err(AppError::Validation(format!("{field} must be in the future")));
    }
    Ok(time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(time).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_quiet_level_holds_until_its_time_then_is_all_again() {
        let setting =
            ConversationNotifications { level: NotifyLevel::None, until: Some("2030-01-01T10:00:00+02:00".into()) }
                .validated(at("2029-12-31T00:00:00Z"))
                .unwrap();
        assert_eq!(setting.until.as_deref(), Some("2030-01-01T08:00:00.000Z"), "normalised to UTC");
        assert_eq!(setting.effective("2030-01-01T07:59:59.999Z").level, NotifyLevel::None);
        assert_eq!(setting.effective("2030-01-01T08:00:00.000Z"), ConversationNotifications::default());
    }

    #[test]
    fn past_times_unparsable_times_and_until_with_all_are_refused() {
        let now = at("2030-01-01T00:00:00Z");
        let with = |level, until: &str| ConversationNotifications { level, until: Some(until.into()) }.validated(now);
        assert!(with(NotifyLevel::Mentions, "2029-12-31T23:59:59Z").is_err());
        assert!(with(NotifyLevel::Mentions, "tomorrow").is_err());
        assert!(with(NotifyLevel::All, "2030-02-01T00:00:00Z").is_err());
        let dnd = NotificationPreferences { do_not_disturb_until: Some("2029-01-01T00:00:00Z".into()), previews: true };
        assert!(dnd.validated(now).is_err());
    }

    #[test]
    fn preferences_default_to_previews_and_no_do_not_disturb() {
        let prefs: NotificationPreferences = serde_json::from_str("{}").unwrap();
        assert_eq!(prefs, NotificationPreferences::default());
        assert!(prefs.previews);
        let past =
            NotificationPreferences { do_not_disturb_until: Some("2020-01-01T00:00:00.000Z".into()), previews: false };
        assert_eq!(past.effective("2024-01-01T00:00:00.000Z").do_not_disturb_until, None);
    }
}

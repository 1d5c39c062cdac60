//! [`ModerationStore`] over DynamoDB (patterns #51-#56): one item per report under its target (`REPORT#<target>`,
//! `BY#<reporter>`), so a reporter's second report of the same target is a failed condition and fifty reporters
//! at once write fifty different items; open reports are listed through the username index `gsi1` under one
//! `REPORTS#OPEN` partition that resolving takes them out of; the audit record is a partition per month.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::{
    DynamoDbStore, Item, cancellation_codes, failed_condition, get_id, get_named, get_opt_s, get_s,
    held_by_another_transaction, id, keys, name_of, s,
};
use crate::error::{AppError, AppResult};
use crate::model::{AuditEntry, Report, ReportStatus, ReportTarget, UserId, now_epoch_seconds};
use crate::ports::{AuditKey, ModerationStore, RateLimit, ReportKey};

const OPEN_REPORTS_INDEX: &str = "gsi1";

fn get_target(item: &Item) -> AppResult<ReportTarget> {
    get_s(item, "target")?.parse().map_err(|_| AppError::internal("stored item has an invalid target"))
}

fn open_sort_key(key: &ReportKey) -> String {
    format!("{}#{}#{}", key.created_at, key.target, key.reporter_id)
}

fn report_item(report: &Report) -> AppResult<Item> {
    let target = report.target.to_string();
    let mut item = DynamoDbStore::key(keys::report(&target), keys::reporter(&report.reporter_id));
    item.insert("target".into(), s(&target));
    item.insert("reporterId".into(), id(&report.reporter_id));
    item.insert("reason".into(), name_of(&report.reason)?);
    if let Some(details) = &report.details {
        item.insert("details".into(), s(details));
    }
    item.insert("createdAt".into(), s(&report.created_at));
    item.insert("subjectId".into(), id(&report.subject_id));
    if let Some(excerpt) = &report.excerpt {
        item.insert("excerpt".into(), s(excerpt));
    }
    item.insert("status".into(), name_of(&report.status)?);
    if report.status == ReportStatus::Open {
        item.insert("gsi1pk".into(), s(keys::OPEN_REPORTS));
        item.insert("gsi1sk".into(), s(open_sort_key(&ReportKey::of(report))));
    }
    Ok(item)
}

fn report_from_item(item: &Item) -> AppResult<Report> {
    Ok(Report {
        target: get_target(item)?,
        reporter_id: get_id(item, "reporterId")?,
        reason: get_named(item, "reason")?,
        details: get_opt_s(item, "details"),
        created_at: get_s(item, "createdAt")?,
        subject_id: get_id(item, "subjectId")?,
        excerpt: get_opt_s(item, "excerpt"),
        status: get_named(item, "status")?,
    })
}

fn audit_sort_key(at: &str, entry_id: &str) -> String {
    format!("{at}#{entry_id}")
}

fn audit_from_item(item: &Item) -> AppResult<AuditEntry> {
    Ok(AuditEntry {
        id: get_s(item, "entryId")?,
        at: get_s(item, "at")?,
        operator_id: get_id(item, "operatorId")?,
        action: get_named(item, "action")?,
        target: get_target(item)?,
        note: get_opt_s(item, "note"),
    })
}

impl DynamoDbStore {
    /// Sets one flag on a profile; `false` if there is no such profile.
    async fn set_profile_flag(&self, user_id: &UserId, flag: &str, value: bool) -> AppResult<bool> {
        let update = self
            .client
            .update_item()
            .set_key(Some(Self::key(keys::user(user_id), keys::PROFILE)))
            .update_expression("SET #flag = :value")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#flag", flag)
            .expression_attribute_values(":value", AttributeValue::Bool(value));
        Ok(self.update_if(update).await?.is_some())
    }
}

#[async_trait]
impl ModerationStore for DynamoDbStore {
    async fn create_report(&self, report: &Report, limit: &RateLimit) -> AppResult<bool> {
        let now = now_epoch_seconds();
        let items = vec![
            self.put(report_item(report)?, true)?,
            TransactWriteItem::builder().update(self.rate_update(&report.reporter_id, limit, now)?).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if failed_condition(&codes, 0) => Ok(false),
                Some(codes) if failed_condition(&codes, 1) => Err(limit.exceeded(now)),
                // The same reporter's other report held the rate counter at that moment.
                Some(codes) if held_by_another_transaction(&codes) => Err(AppError::BUSY),
                _ => Err(e.into()),
            },
        }
    }

    async fn open_reports(&self, after: Option<&ReportKey>, limit: usize) -> AppResult<Vec<Report>> {
        // The start of an index query names the index key and the table key of the last item.
        let start = after.map(|key| {
            let mut start = Self::key(keys::report(&key.target), keys::reporter(&key.reporter_id));
            start.insert("gsi1pk".into(), s(keys::OPEN_REPORTS));
            start.insert("gsi1sk".into(), s(open_sort_key(key)));
            start
        });
        let query = self
            .client
            .query()
            .index_name(OPEN_REPORTS_INDEX)
            .key_condition_expression("gsi1pk = :open")
            .expression_attribute_values(":open", s(keys::OPEN_REPORTS));
        self.query_all(query, start, Some(limit)).await?.iter().map(report_from_item).collect()
    }

    async fn resolve_reports(
        &self,
        target: &ReportTarget,
        status: ReportStatus,
        resolved_by: &UserId,
        at: &str,
    ) -> AppResult<usize> {
        let target = target.to_string();
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk")
            .filter_expression("#status = :open")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pk", s(keys::report(&target)))
            .expression_attribute_values(":open", name_of(&ReportStatus::Open)?)
            .consistent_read(true);
        let mut resolved = 0;
        for item in self.query_all(query, None, None).await? {
            let reporter: UserId = get_id(&item, "reporterId")?;
            let update = self
                .client
                .update_item()
                .set_key(Some(Self::key(keys::report(&target), keys::reporter(&reporter))))
                .update_expression("SET #status = :status, resolvedBy = :by, resolvedAt = :at REMOVE gsi1pk, gsi1sk")
                .condition_expression("#status = :open")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", name_of(&status)?)
                .expression_attribute_values(":open", name_of(&ReportStatus::Open)?)
                .expression_attribute_values(":by", id(resolved_by))
                .expression_attribute_values(":at", s(at));
            // Another operator resolving the same target at the same moment closes it first: not counted twice.
            resolved += usize::from(self.update_if(update).await?.is_some());
        }
        Ok(resolved)
    }

    async fn set_operator(&self, user_id: &UserId, operator: bool) -> AppResult<bool> {
        self.set_profile_flag(user_id, "operator", operator).await
    }

    async fn set_suspended(&self, user_id: &UserId, suspended: bool) -> AppResult<bool> {
        self.set_profile_flag(user_id, "suspended", suspended).await
    }

    async fn record_audit(&self, entry: &AuditEntry) -> AppResult<()> {
        let mut item = Self::key(keys::audit(entry.month()), audit_sort_key(&entry.at, &entry.id));
        item.insert("entryId".into(), s(&entry.id));
        item.insert("at".into(), s(&entry.at));
        item.insert("operatorId".into(), id(&entry.operator_id));
        item.insert("action".into(), name_of(&entry.action)?);
        item.insert("target".into(), s(entry.target.to_string()));
        if let Some(note) = &entry.note {
            item.insert("note".into(), s(note));
        }
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await?;
        Ok(())
    }

    async fn audit_entries(&self, month: &str, before: Option<&AuditKey>, limit: usize) -> AppResult<Vec<AuditEntry>> {
        let start = before.map(|key| Self::key(keys::audit(month), audit_sort_key(&key.at, &key.id)));
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::audit(month)))
            .scan_index_forward(false)
            .consistent_read(true);
        self.query_all(query, start, Some(limit)).await?.iter().map(audit_from_item).collect()
    }
}

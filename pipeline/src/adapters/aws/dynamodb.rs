//! Jobs, reusable results, claims and user preferences in one DynamoDB
//! table keyed by `pk`:
//!
//! | `pk`                   | holds                                       |
//! |------------------------|---------------------------------------------|
//! | `job#<id>`             | the job as JSON, its version and status     |
//! | `key#<content key>`    | the job that owns a content key (marker)     |
//! | `request#<request>`    | the job made for a front end's request      |
//! | `page#<pixel hash>`    | a page's reading                            |
//! | `narration#<key>`      | a narration's audio reference               |
//! | `claim#<key>`          | an inbound request handled once             |
//! | `user#<user>`          | a user's preferences                        |
//! | `record#<key>`         | a front end's record (Slack installation)   |
//!
//! Deduplication never trusts a query: a new job is written in one
//! transaction with its content-key marker, on the condition that the
//! marker is absent (or still names the failed or full job it replaces).
//! Of two concurrent submissions one transaction is cancelled, and that
//! submitter joins the winner's job. Unfinished jobs carry an `attention`
//! attribute, which puts them in the sparse `attention` index the stall
//! sweep queries. Everything but preferences and `record#` items carries
//! `expires_at`, the table's TTL attribute.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, Put, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem,
};

use super::sdk_errors::classify;
use crate::domain::{AudioRef, ContentId, Destination, Job, JobId, JobStatus, PageReading, PortError, now_ms};
use crate::ports::{JobStore, MAX_RECIPIENTS, Preferences, Reusable, Submitted, UserPrefs};
use crate::setup::{Ensured, Finding, Setup};

const WHAT: &str = "the DynamoDB table";
const INDEX: &str = "attention";
/// How often a submission re-reads a content key another submitter won.
const SUBMIT_ATTEMPTS: usize = 32;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
    ttl: Duration,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, PortError> {
    serde_json::to_string(v).map_err(|e| PortError::rejected(WHAT, e))
}

fn from_json<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, PortError> {
    let body = text(item, "body").ok_or_else(|| PortError::rejected(WHAT, "a record without a body"))?;
    serde_json::from_str(body).map_err(|e| PortError::rejected(WHAT, format!("unreadable record: {e}")))
}

fn build_error(e: impl std::fmt::Display) -> PortError {
    PortError::rejected(WHAT, e)
}

/// Why a transaction was cancelled: the indexes of the items whose
/// condition failed, or the error to report.
enum Cancelled {
    Condition(Vec<usize>),
    Other(PortError),
}

impl DynamoJobStore {
    /// The store on `table`; records expire `ttl` after their last write.
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>, ttl: Duration) -> Self {
        Self { client: Client::new(config), table: table.into(), ttl }
    }

    fn expires_at(&self) -> AttributeValue {
        n(now_ms() / 1000 + self.ttl.as_secs() as i64)
    }

    fn job_item(&self, job: &Job) -> Result<Item, PortError> {
        let mut item = Item::from([
            ("pk".into(), s(format!("job#{}", job.id))),
            ("body".into(), s(to_json(job)?)),
            ("version".into(), n(job.version)),
            ("job_status".into(), s(job.status.as_str())),
            ("updated_ms".into(), n(job.updated_ms)),
            ("expires_at".into(), self.expires_at()),
        ]);
        if job.needs_attention() {
            item.insert("attention".into(), s("1"));
        }
        Ok(item)
    }

    fn marker(&self, pk: String, job: &JobId) -> Item {
        Item::from([("pk".into(), s(pk)), ("job_id".into(), s(job.as_str())), ("expires_at".into(), self.expires_at())])
    }

    async fn get_item(&self, pk: &str) -> Result<Option<Item>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(out.item)
    }

    async fn job_named_by(&self, marker: &str) -> Result<Option<Job>, PortError> {
        let Some(item) = self.get_item(marker).await? else { return Ok(None) };
        let Some(id) = text(&item, "job_id") else { return Ok(None) };
        self.get_body(&format!("job#{id}")).await
    }

    /// Writes `item` only if no record has its key; false if one has.
    async fn put_new(&self, item: Item) -> Result<bool, PortError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(classify(WHAT, e)),
        }
    }

    /// Writes every `(item, condition)` or none; an empty condition is none.
    async fn transact(&self, puts: Vec<(Item, String, Item)>) -> Result<(), Cancelled> {
        let mut items = Vec::with_capacity(puts.len());
        for (item, condition, values) in puts {
            let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
            if !condition.is_empty() {
                put = put.condition_expression(condition);
            }
            if !values.is_empty() {
                put = put.set_expression_attribute_values(Some(values));
            }
            let put = put.build().map_err(|e| Cancelled::Other(build_error(e)))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let failed: Vec<usize> = match e.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c)) => c
                        .cancellation_reasons()
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                        .map(|(i, _)| i)
                        .collect(),
                    _ => Vec::new(),
                };
                Err(if failed.is_empty() { Cancelled::Other(classify(WHAT, e)) } else { Cancelled::Condition(failed) })
            }
        }
    }

    /// Creates the table (with its index and TTL) when missing and waits
    /// until it can be used. Idempotent; true when it was created.
    pub async fn ensure_table(&self) -> Result<bool, PortError> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(_) => return Ok(false),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => return Err(classify(WHAT, e)),
        }
        let attribute = |name: &str, kind| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().map_err(build_error)
        };
        let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let index = GlobalSecondaryIndex::builder()
            .index_name(INDEX)
            .key_schema(key("attention", KeyType::Hash).map_err(build_error)?)
            .key_schema(key("updated_ms", KeyType::Range).map_err(build_error)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(build_error)?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("attention", ScalarAttributeType::S)?)
            .attribute_definitions(attribute("updated_ms", ScalarAttributeType::N)?)
            .key_schema(key("pk", KeyType::Hash).map_err(build_error)?)
            .global_secondary_indexes(index)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Created by someone else meanwhile.
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => return Ok(false),
            Err(e) => return Err(classify(WHAT, e)),
        }
        self.wait_until_active().await?;
        let ttl = TimeToLiveSpecification::builder().enabled(true).attribute_name("expires_at").build();
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl.map_err(build_error)?)
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(true)
    }

    /// A new table takes a few seconds on AWS before it takes writes.
    async fn wait_until_active(&self) -> Result<(), PortError> {
        for _ in 0..120 {
            let out = self.client.describe_table().table_name(&self.table).send().await;
            let status = out.map_err(|e| classify(WHAT, e))?.table.and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(PortError::unavailable(WHAT, format!("{} did not become active within 2 minutes", self.table)))
    }

    /// Whether the table answers: describes it.
    pub async fn check(&self) -> Result<(), PortError> {
        self.client.describe_table().table_name(&self.table).send().await.map_err(|e| classify(WHAT, e))?;
        Ok(())
    }

    async fn put_body(&self, pk: String, body: String) -> Result<(), PortError> {
        let item =
            Item::from([("pk".into(), s(pk)), ("body".into(), s(body)), ("expires_at".into(), self.expires_at())]);
        // First writer wins: the same key always has the same result.
        self.put_new(item).await.map(drop)
    }

    /// Writes `item` over any earlier one, without `expires_at`: kept until
    /// replaced or deleted (preferences and records).
    async fn put_kept(&self, item: Item) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(())
    }

    async fn get_body<T: serde::de::DeserializeOwned>(&self, pk: &str) -> Result<Option<T>, PortError> {
        self.get_item(pk).await?.map(|item| from_json(&item)).transpose()
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    /// Most submissions are new, so the job and its markers are written
    /// first (one request) and the markers are read only when one is taken.
    async fn submit(&self, job: Job, destinations: Vec<Destination>) -> Result<Submitted, PortError> {
        let mut job = job;
        for d in destinations.iter().cloned() {
            job.add_recipient(d);
        }
        let request_marker = job.request.as_ref().map(|r| format!("request#{r}"));
        let key_marker = job.content_key.as_ref().map(|k| format!("key#{k}"));
        let mut key_condition = ("attribute_not_exists(pk)".to_owned(), Item::new());
        for _ in 0..SUBMIT_ATTEMPTS {
            let absent = || "attribute_not_exists(pk)".to_owned();
            let mut puts = vec![(self.job_item(&job)?, absent(), Item::new())];
            let key_at = key_marker.as_ref().map(|pk| {
                puts.push((self.marker(pk.clone(), &job.id), key_condition.0.clone(), key_condition.1.clone()));
                puts.len() - 1
            });
            let request_at = request_marker.as_ref().map(|pk| {
                puts.push((self.marker(pk.clone(), &job.id), absent(), Item::new()));
                puts.len() - 1
            });
            let failed = match self.transact(puts).await {
                Ok(()) => return Ok(Submitted::Created(job)),
                Err(Cancelled::Other(e)) => return Err(e),
                Err(Cancelled::Condition(failed)) => failed,
            };
            // The same request was submitted before, or concurrently.
            if let (Some(marker), Some(at)) = (&request_marker, request_at)
                && failed.contains(&at)
            {
                if let Some(existing) = self.job_named_by(marker).await? {
                    return Ok(Submitted::Existing { job: existing, recipients: Vec::new() });
                }
                continue;
            }
            let (Some(marker), Some(at)) = (&key_marker, key_at) else {
                return Err(PortError::conflict(job.id.to_string()));
            };
            if !failed.contains(&at) {
                return Err(PortError::conflict(job.id.to_string()));
            }
            // Another job holds the content key: join it, or take the key
            // over from a failed, full or vanished job — only if the key
            // still names that job when we write.
            let Some(item) = self.get_item(marker).await? else { continue };
            let owner = text(&item, "job_id").unwrap_or_default().to_owned();
            match self.get_body::<Job>(&format!("job#{owner}")).await? {
                Some(mut existing)
                    if existing.status != JobStatus::Failed && existing.recipients.len() < MAX_RECIPIENTS =>
                {
                    let recipients: Vec<usize> =
                        destinations.iter().cloned().map(|d| existing.add_recipient(d)).collect();
                    if !recipients.is_empty() {
                        match self.save(&existing).await {
                            Ok(version) => existing.version = version,
                            // The job moved on meanwhile: look again.
                            Err(e) if e.kind() == crate::domain::ErrorKind::Conflict => continue,
                            Err(e) => return Err(e),
                        }
                    }
                    return Ok(Submitted::Existing { job: existing, recipients });
                }
                _ => {
                    key_condition = (
                        "attribute_not_exists(pk) OR job_id = :old".to_owned(),
                        Item::from([(":old".into(), s(owner))]),
                    )
                }
            }
        }
        Err(PortError::conflict(format!("the content key of job {}", job.id)))
    }

    async fn get(&self, id: &JobId) -> Result<Option<Job>, PortError> {
        self.get_body(&format!("job#{id}")).await
    }

    async fn save(&self, job: &Job) -> Result<u64, PortError> {
        let mut next = job.clone();
        next.version += 1;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.job_item(&next)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(job.version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(next.version),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(PortError::conflict(job.id.to_string()))
            }
            Err(e) => Err(classify(WHAT, e)),
        }
    }

    /// One transaction: the job on its version, the result unconditionally.
    async fn save_with(&self, job: &Job, result: Reusable<'_>) -> Result<u64, PortError> {
        let mut next = job.clone();
        next.version += 1;
        let (pk, body) = match result {
            Reusable::Page(pixels, reading) => (format!("page#{pixels}"), to_json(reading)?),
            Reusable::Narration(key, audio) => (format!("narration#{key}"), to_json(audio)?),
        };
        let result =
            Item::from([("pk".into(), s(pk)), ("body".into(), s(body)), ("expires_at".into(), self.expires_at())]);
        let puts = vec![
            (self.job_item(&next)?, "version = :v".to_owned(), Item::from([(":v".into(), n(job.version))])),
            (result, String::new(), Item::new()),
        ];
        match self.transact(puts).await {
            Ok(()) => Ok(next.version),
            Err(Cancelled::Condition(_)) => Err(PortError::conflict(job.id.to_string())),
            Err(Cancelled::Other(e)) => Err(e),
        }
    }

    async fn stalled(&self, before_ms: i64, limit: usize) -> Result<Vec<Job>, PortError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX)
            .key_condition_expression("attention = :a AND updated_ms < :t")
            .expression_attribute_values(":a", s("1"))
            .expression_attribute_values(":t", n(before_ms))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        out.items.unwrap_or_default().iter().map(from_json).collect()
    }

    async fn page_reading(&self, pixels: &ContentId) -> Result<Option<PageReading>, PortError> {
        self.get_body(&format!("page#{pixels}")).await
    }

    async fn put_page_reading(&self, pixels: &ContentId, reading: &PageReading) -> Result<(), PortError> {
        self.put_body(format!("page#{pixels}"), to_json(reading)?).await
    }

    async fn narration(&self, key: &ContentId) -> Result<Option<AudioRef>, PortError> {
        self.get_body(&format!("narration#{key}")).await
    }

    async fn put_narration(&self, key: &ContentId, audio: &AudioRef) -> Result<(), PortError> {
        self.put_body(format!("narration#{key}"), to_json(audio)?).await
    }

    async fn claim(&self, key: &str) -> Result<bool, PortError> {
        let item = Item::from([
            ("pk".into(), s(format!("claim#{key}"))),
            ("at_ms".into(), n(now_ms())),
            ("expires_at".into(), self.expires_at()),
        ]);
        self.put_new(item).await
    }

    /// Unfinished jobs by status, from the attention index (finished jobs
    /// are not counted: that would take a scan of the table).
    async fn counts(&self) -> Result<Vec<(String, u64)>, PortError> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX)
                .key_condition_expression("attention = :a")
                .expression_attribute_values(":a", s("1"))
                .projection_expression("job_status")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify(WHAT, e))?;
            for item in out.items.unwrap_or_default() {
                *counts.entry(text(&item, "job_status").unwrap_or("unknown").to_owned()).or_default() += 1;
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
        counts.sort();
        Ok(counts)
    }
}

#[async_trait]
impl Preferences for DynamoJobStore {
    async fn get(&self, user: &str) -> Result<UserPrefs, PortError> {
        Ok(self.get_body(&format!("user#{user}")).await?.unwrap_or_default())
    }

    async fn set(&self, user: &str, prefs: &UserPrefs) -> Result<(), PortError> {
        self.put_kept(Item::from([("pk".into(), s(format!("user#{user}"))), ("body".into(), s(to_json(prefs)?))])).await
    }

    async fn record(&self, key: &str) -> Result<Option<String>, PortError> {
        let item = self.get_item(&format!("record#{key}")).await?;
        Ok(item.and_then(|mut i| i.remove("value")).and_then(|v| v.as_s().ok().cloned()))
    }

    async fn put_record(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.put_kept(Item::from([("pk".into(), s(format!("record#{key}"))), ("value".into(), s(value))])).await
    }

    async fn put_job_record(&self, key: &str, value: &str) -> Result<(), PortError> {
        self.put_kept(Item::from([
            ("pk".into(), s(format!("record#{key}"))),
            ("value".into(), s(value)),
            ("expires_at".into(), self.expires_at()),
        ]))
        .await
    }

    async fn delete_record(&self, key: &str) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("record#{key}")))
            .send()
            .await
            .map_err(|e| classify(WHAT, e))?;
        Ok(())
    }
}

#[async_trait]
impl Setup for DynamoJobStore {
    async fn ensure(&self) -> Result<Vec<Ensured>, PortError> {
        let created = self.ensure_table().await?;
        Ok(vec![Ensured::new(created, "table", format!("{} (TTL on expires_at)", self.table))])
    }

    async fn check(&self) -> Vec<Finding> {
        let resource = format!("table {}", self.table);
        vec![Finding::of("dynamodb", resource, self.check().await, "dynamodb:DescribeTable on the table")]
    }
}

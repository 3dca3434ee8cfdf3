//! The DynamoDB side of a claim, kept apart from the decisions that use it: the conditional
//! writes that claim, finish and give back an item, and the read and attribute helpers that
//! `versioned` reuses rather than writing its own.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};

use super::{DONE, IN_PROGRESS, REMEMBERED_FOR, TABLE_VARIABLE, millis, now_ms};
use crate::config::{Environment, Vars};
use crate::deadline::Deadline;
use crate::error::Error;

pub(super) struct Table {
    pub(super) client: Client,
    pub(super) name: String,
    pub(super) lease_grace: Duration,
}

type Item = std::collections::HashMap<String, AttributeValue>;

pub(super) struct Found {
    pub(super) status: String,
    pub(super) owner: String,
    pub(super) lease_until_ms: u64,
}

impl From<Item> for Found {
    fn from(item: Item) -> Self {
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let text = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        Self {
            status: text("status"),
            owner: text("owner"),
            lease_until_ms: number("lease_until_ms"),
        }
    }
}

/// What a conditional claim came to.
pub(super) enum Put {
    Won,
    /// The condition failed; the item that failed it, when DynamoDB returned it.
    Lost(Option<Item>),
}

impl Table {
    pub(super) async fn put_claim(
        &self,
        key: &str,
        owner: &str,
        lease: &Deadline,
        ask_by: &Deadline,
    ) -> Result<Put, Error> {
        let now = now_ms();
        let lease_until = now
            .saturating_add(millis(lease.remaining()))
            .saturating_add(millis(self.lease_grace));
        let call = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("id", s(key))
            .item("status", s(IN_PROGRESS))
            .item("owner", s(owner))
            .item("lease_until_ms", n(lease_until))
            .item("expires_at", n(expiry_secs()))
            .condition_expression(
                "attribute_not_exists(id) OR expires_at < :now_s OR (#status = :in_progress AND lease_until_ms < :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", n(now / 1000))
            .expression_attribute_values(":now_ms", n(now))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            // The holder comes back with the refusal, in the same request and as the
            // condition saw it: no second round trip, and no release can slip in between.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send();
        match bounded(ask_by, "claiming in the idempotency store", call).await? {
            Ok(_) => Ok(Put::Won),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(refused)) => {
                    Ok(Put::Lost(refused.item().cloned()))
                }
                _ => Err(Error::from_sdk("DynamoDB", "PutItem", e)),
            },
        }
    }

    pub(super) async fn read(
        &self,
        key: &str,
        deadline: &Deadline,
    ) -> Result<Option<Found>, Error> {
        Ok(read_live(&self.client, &self.name, key, deadline)
            .await?
            .map(Found::from))
    }

    /// `false` when the claim is no longer this owner's.
    pub(super) async fn mark_done(
        &self,
        key: &str,
        owner: &str,
        deadline: &Deadline,
    ) -> Result<bool, Error> {
        let call = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("id", s(key))
            .update_expression("SET #status = :done, expires_at = :expires REMOVE lease_until_ms")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":expires", n(expiry_secs()))
            .expression_attribute_values(":owner", s(owner))
            .send();
        match bounded(deadline, "marking a claim done", call).await? {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::from_sdk("DynamoDB", "UpdateItem", e)),
        }
    }

    pub(super) async fn delete_claim(
        &self,
        key: &str,
        owner: &str,
        deadline: &Deadline,
    ) -> Result<(), Error> {
        let call = self
            .client
            .delete_item()
            .table_name(&self.name)
            .key("id", s(key))
            .condition_expression("#owner = :owner AND #status = :in_progress")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send();
        match bounded(deadline, "releasing a claim", call).await? {
            Ok(_) => Ok(()),
            // Taken over or already done: not this owner's to give back.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Error::from_sdk("DynamoDB", "DeleteItem", e)),
        }
    }
}

/// The table `IDEMPOTENCY_TABLE` names, where claims and shared documents live.
pub(crate) fn configured_table<E: Environment + ?Sized>(
    env: &E,
) -> Result<Option<String>, crate::config::ConfigError> {
    let lists = [crate::config::SHARED_VARIABLES];
    Vars::declared(env, &lists).optional(TABLE_VARIABLE)
}

/// The item `id` by a consistent read, or `None` when there is none or it has expired: TTL
/// deletes expired items only eventually, so one that is still there counts as absent.
pub(crate) async fn read_live(
    client: &Client,
    table: &str,
    id: &str,
    deadline: &Deadline,
) -> Result<Option<Item>, Error> {
    let call = client
        .get_item()
        .table_name(table)
        .key("id", s(id))
        .consistent_read(true)
        .send();
    let out = bounded(deadline, "reading the idempotency table", call)
        .await?
        .map_err(|e| Error::from_sdk("DynamoDB", "GetItem", e))?;
    Ok(out.item.and_then(live))
}

/// `None` for an item past its `expires_at`, which TTL has not deleted yet.
pub(super) fn live(item: Item) -> Option<Item> {
    let expires_at = item
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    (expires_at >= now_ms() / 1000).then_some(item)
}

pub(crate) async fn bounded<F: std::future::Future>(
    deadline: &Deadline,
    what: &'static str,
    call: F,
) -> Result<F::Output, Error> {
    deadline.run(call).await.map_err(|_| Error::OutOfTime(what))
}

pub(crate) fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

pub(crate) fn n(number: u64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

fn expiry_secs() -> u64 {
    (now_ms() / 1000).saturating_add(REMEMBERED_FOR.as_secs())
}

//! The DynamoDB job store against moto: the same contract the SQLite store
//! keeps (race-free deduplication by conditional writes, claims, versions,
//! the stall index), on a table `storytime init` would create.

use std::sync::Arc;
use std::time::Duration;

use storytime_pipeline::adapters::aws::DynamoJobStore;
use storytime_pipeline::contract;
use storytime_tests::moto::Moto;

#[tokio::test]
async fn the_dynamodb_job_store_keeps_the_contract() {
    let moto = Moto::start();
    let store = DynamoJobStore::new(&moto.sdk_config().await, "storytime-contract", Duration::from_secs(3600));
    assert!(store.ensure_table().await.unwrap(), "created");
    assert!(!store.ensure_table().await.unwrap(), "a second run changes nothing");
    contract::preferences(&store).await;
    contract::job_store(Arc::new(store)).await;
}

#[tokio::test]
async fn an_uploads_record_expires_with_the_jobs_and_a_workspaces_is_kept() {
    use storytime_pipeline::ports::Preferences;
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let store = DynamoJobStore::new(&config, "storytime-records", Duration::from_secs(3600));
    store.ensure_table().await.unwrap();
    store.put_job_record("upload:abc", "{}").await.unwrap();
    store.put_record("slack:T1", "{}").await.unwrap();
    assert_eq!(store.record("upload:abc").await.unwrap().as_deref(), Some("{}"));

    let client = aws_sdk_dynamodb::Client::new(&config);
    let expires_at = |pk: &'static str| {
        let client = client.clone();
        async move {
            let item = client
                .get_item()
                .table_name("storytime-records")
                .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
                .send()
                .await
                .unwrap()
                .item
                .expect("the record");
            item.get("expires_at").map(|v| v.as_n().unwrap().parse::<i64>().unwrap())
        }
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let upload = expires_at("record#upload:abc").await.expect("an upload's record expires");
    assert!((now + 3590..=now + 3610).contains(&upload), "expires at {upload}, now {now}");
    assert_eq!(expires_at("record#slack:T1").await, None, "a workspace's record is kept");
}

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

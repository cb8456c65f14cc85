//! The SNS notifier against moto: mail for the default recipients and for
//! a user's own address, each reaching only its subscription.

use serde_json::Value;
use storytime_pipeline::adapters::aws::SnsNotifier;
use storytime_pipeline::ports::{Email, Notifier};
use storytime_tests::moto::Moto;

#[tokio::test]
async fn mail_is_published_with_its_addressee_and_new_addresses_are_subscribed() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let notifier = SnsNotifier::new(&sdk, "storytime-results");
    let missing = notifier.notify(&Email { to: None, subject: "x".into(), body: "y".into() }).await.unwrap_err();
    assert!(missing.to_string().contains("run `storytime init`"), "{missing}");

    let arn = notifier.ensure_topic(Some("teacher@example.com")).await.unwrap();
    assert_eq!(notifier.ensure_topic(None).await.unwrap(), arn, "idempotent");
    let notifier = SnsNotifier::new(&sdk, "storytime-results");
    let mail = |to: Option<&str>| Email {
        to: to.map(str::to_owned),
        subject: "Your story is ready:\nfox.png".into(),
        body: "Listen: https://example.com/a.mp3".into(),
    };
    notifier.notify(&mail(None)).await.unwrap();
    notifier.notify(&mail(Some("mum@example.com"))).await.unwrap();
    notifier.notify(&mail(Some("mum@example.com"))).await.unwrap();

    let sns = aws_sdk_sns::Client::new(&sdk);
    let subs = sns.list_subscriptions_by_topic().topic_arn(&arn).send().await.unwrap();
    let mut endpoints: Vec<&str> = subs.subscriptions().iter().filter_map(|s| s.endpoint()).collect();
    endpoints.sort();
    assert_eq!(endpoints, ["mum@example.com", "teacher@example.com"], "subscribed once each");
    for s in subs.subscriptions() {
        let attrs = sns.get_subscription_attributes().subscription_arn(s.subscription_arn().unwrap()).send().await;
        let policy = attrs.unwrap().attributes.unwrap_or_default().remove("FilterPolicy").unwrap_or_default();
        let expected = if s.endpoint() == Some("mum@example.com") { "mum@example.com" } else { "default" };
        assert!(policy.contains(expected), "{policy}");
    }

    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.url)).await.unwrap().json().await.unwrap();
    let sent: Vec<&Value> = data["sns"]["Topic"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["sent_notifications"].as_array().unwrap())
        .collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0][2], "Your story is ready: fox.png", "one line");
    let to: Vec<&str> = sent.iter().map(|n| n[3]["to"]["Value"].as_str().unwrap_or("")).collect();
    assert_eq!(to, ["default", "mum@example.com", "mum@example.com"]);
}

//! The test support's own checks: a mistake in how tests judge a reading or
//! sign a request would hide mistakes in the product.

use storytime_tests::cer;
use storytime_tests::slack_sign::slack_signature;
use storytime_tests::stats::{buckets, percentile, quantile_between};

#[test]
fn cer_counts_edits_per_reference_character() {
    assert_eq!(cer("abc", "abc"), 0.0);
    assert_eq!(cer("abd", "abc"), 1.0 / 3.0);
    assert_eq!(cer("\u{201c}a  b\u{201d}", "\"a b\""), 0.0);
}

#[test]
fn signatures_match_slacks_documented_example() {
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    assert_eq!(
        slack_signature("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body),
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    );
}

#[test]
fn percentiles_and_histogram_quantiles_are_read_as_prometheus_would() {
    assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
    assert_eq!(percentile(&[], 99.0), 0.0);
    let page = "x_bucket{outcome=\"done\",le=\"1\"} 2\nx_bucket{outcome=\"done\",le=\"2\"} 6\nx_bucket{outcome=\"done\",le=\"+Inf\"} 6\n";
    let after = buckets(page, "x", "outcome=\"done\"");
    assert_eq!(after, [(1.0, 2.0), (2.0, 6.0), (f64::INFINITY, 6.0)]);
    // Between nothing and this: 2 at or under 1 s, 4 in (1, 2].
    assert_eq!(quantile_between(&[], &after, 0.5), Some(1.25));
    assert_eq!(quantile_between(&after, &after, 0.5), None, "no new observations");
}

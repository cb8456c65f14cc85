//! End-to-end tests: the real `storytime` binary, real engines, loopback.

mod aws_dynamodb;
mod aws_pipeline;
mod aws_readers;
mod aws_roles;
mod aws_s3;
mod aws_secrets;
mod aws_sns;
mod aws_sqs;
mod cli;
mod durability;
mod hostile;
mod jwt;
mod lambda;
mod manifest;
mod narration;
mod observability;
mod privacy;
mod rest_api;
mod slack;
mod slack_apps;
mod support_checks;
mod tesseract_layer;
mod web_page;

//! End-to-end tests: the real `storytime` binary, real engines, loopback.

mod aws_s3;
mod bad_inputs;
mod cli;
mod durability;
mod manifest;
mod rest_api;
mod slack;

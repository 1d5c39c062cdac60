//! The ports over AWS: DynamoDB for every store, the API Gateway Management API for delivery, SQS for the
//! fan-out queue, S3 for attachments. The same code runs against the emulator, whose endpoint comes from the
//! SDK's standard `AWS_ENDPOINT_URL` variables.

pub mod apigateway;
pub mod dynamo;
pub mod eventbridge;
pub mod s3;
pub mod sns;
pub mod sqs;

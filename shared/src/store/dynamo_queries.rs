//! [`QueryStore`](super::QueryStore) over DynamoDB.

use async_trait::async_trait;

use super::QueryStore;
use super::dynamo::DynamoDbStore;

#[async_trait]
impl QueryStore for DynamoDbStore {}

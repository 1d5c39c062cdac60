//! [`Fanout`] over the API Gateway Management API (PostToConnection, and DeleteConnection to close a connection
//! whose session ended), with what each answer means for delivery.

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::operation::delete_connection::DeleteConnectionError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;

use crate::error::{AppError, AppResult};
use crate::model::ConnectionId;
use crate::ports::{Fanout, PostOutcome};

pub struct ApiGatewayFanout {
    client: aws_sdk_apigatewaymanagement::Client,
    max_in_flight: usize,
}

impl ApiGatewayFanout {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client, max_in_flight: usize) -> Self {
        ApiGatewayFanout { client, max_in_flight }
    }
}

#[async_trait]
impl Fanout for ApiGatewayFanout {
    async fn post(&self, connection_id: &ConnectionId, frame: &str) -> PostOutcome {
        let result = self
            .client
            .post_to_connection()
            .connection_id(connection_id.as_str())
            .data(Blob::new(frame.as_bytes()))
            .send()
            .await;
        match result {
            Ok(_) => PostOutcome::Delivered,
            Err(err) => match err.as_service_error() {
                Some(PostToConnectionError::GoneException(_)) => PostOutcome::Gone,
                Some(PostToConnectionError::LimitExceededException(_)) => PostOutcome::Throttled,
                _ if err.raw_response().is_some_and(|r| r.status().as_u16() == 429) => PostOutcome::Throttled,
                _ if err.raw_response().is_some_and(|r| r.status().as_u16() == 410) => PostOutcome::Gone,
                _ => {
                    tracing::warn!(%connection_id, error = ?err, "PostToConnection failed");
                    PostOutcome::Failed
                }
            },
        }
    }

    async fn disconnect(&self, connection_id: &ConnectionId) -> AppResult<()> {
        match self.client.delete_connection().connection_id(connection_id.as_str()).send().await {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.as_service_error(), Some(DeleteConnectionError::GoneException(_))) => Ok(()),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 410) => Ok(()),
            Err(err) => Err(AppError::internal(format!("DeleteConnection {connection_id}: {err:?}"))),
        }
    }

    fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }
}

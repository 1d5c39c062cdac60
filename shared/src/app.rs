//! The composition root: what a Lambda function is built from, once per cold start. Configuration is read and
//! checked, the AWS clients are built, and, only for the functions that issue or verify tokens or sign cursors
//! (`ws-connect`, `rest-api`), the signing key is fetched from Secrets Manager.

use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;

use crate::auth::TokenKeys;
use crate::aws::apigateway::ApiGatewayFanout;
use crate::aws::dynamo::DynamoDbStore;
use crate::config::Config;
use crate::cursor::CursorCodec;
use crate::error::{AppError, AppResult};
use crate::usecases::{Accounts, App, Pager};

/// Whether a function needs the deployment's signing key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKey {
    Load,
    NotNeeded,
}

/// Configuration and clients of one function.
pub struct Root {
    config: Config,
    store: Arc<DynamoDbStore>,
    fanout: Arc<ApiGatewayFanout>,
    keys: Option<(TokenKeys, CursorCodec)>,
}

impl Root {
    pub async fn from_env(signing_key: SigningKey) -> AppResult<Root> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        let keys = match signing_key {
            SigningKey::NotNeeded => None,
            SigningKey::Load => {
                let arn = config
                    .jwt_secret_arn
                    .as_deref()
                    .ok_or_else(|| AppError::internal("missing configuration JWT_SECRET_ARN"))?;
                let secret = aws_sdk_secretsmanager::Client::new(&sdk)
                    .get_secret_value()
                    .secret_id(arn)
                    .send()
                    .await?
                    .secret_string
                    .ok_or_else(|| AppError::internal("JWT secret has no string value"))?;
                let secret = secret.trim().as_bytes();
                Some((TokenKeys::new(secret, config.token_ttl)?, CursorCodec::new(secret)))
            }
        };
        // A hung PostToConnection must not hold the whole invocation: bound every call.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(2))
            .operation_attempt_timeout(Duration::from_secs(3))
            .operation_timeout(Duration::from_secs(6))
            .build();
        let management = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk)
            .endpoint_url(&config.management_endpoint)
            .timeout_config(timeouts)
            .build();
        Ok(Root {
            store: Arc::new(DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name.clone())),
            fanout: Arc::new(ApiGatewayFanout::new(
                aws_sdk_apigatewaymanagement::Client::from_conf(management),
                config.posts_in_flight,
            )),
            keys,
            config,
        })
    }

    pub fn app(&self) -> App {
        App::new(self.store.clone(), self.fanout.clone(), self.config.connection_ttl)
    }

    fn keys(&self) -> AppResult<&(TokenKeys, CursorCodec)> {
        self.keys.as_ref().ok_or_else(|| AppError::internal("this function was built without the signing key"))
    }

    /// Accounts (issuing and verifying tokens); only where the signing key was loaded.
    pub fn accounts(&self) -> AppResult<Accounts> {
        Ok(Accounts::new(self.store.clone(), self.keys()?.0.clone()))
    }

    /// Page cursors; only where the signing key was loaded.
    pub fn pager(&self) -> AppResult<Pager> {
        Ok(Pager::new(self.keys()?.1.clone()))
    }
}

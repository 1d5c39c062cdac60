//! [`FileStore`] over S3: signed upload forms (S3 POST policies, which hold an upload to one key, type and size),
//! presigned reads, and the objects the attachment processor reads and writes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, Tag, Tagging};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::future::try_join_all;

use crate::error::{AppError, AppResult};
use crate::ports::{FileStore, StoredObject, UploadForm};

/// The tag the bucket's lifecycle rule expires (after a day) unless a message attached the object.
const STATE_TAG: &str = "state";
const PENDING: &str = "pending";
const ATTACHED: &str = "attached";

pub struct S3Files {
    client: Client,
    bucket: String,
    region: String,
    /// Where forms are posted: the bucket's URL as the SDK resolves it (virtual-hosted on AWS).
    bucket_url: String,
    credentials: SharedCredentialsProvider,
}

impl S3Files {
    pub async fn new(sdk: &aws_config::SdkConfig, bucket: String) -> AppResult<Self> {
        let region = sdk.region().map(|r| r.to_string()).ok_or_else(|| AppError::internal("no AWS region"))?;
        let credentials = sdk.credentials_provider().ok_or_else(|| AppError::internal("no AWS credentials"))?;
        let params = Params::builder()
            .bucket(&bucket)
            .region(&region)
            .set_endpoint(sdk.endpoint_url().map(str::to_owned))
            .build()
            .map_err(AppError::internal)?;
        let endpoint = DefaultResolver::new().resolve_endpoint(&params).await.map_err(AppError::internal)?;
        let bucket_url = endpoint.url().trim_end_matches('/').to_owned();
        Ok(S3Files { client: Client::new(sdk), bucket, region, bucket_url, credentials })
    }
}

impl S3Files {
    /// A GET URL of `key`, answered with `disposition` as its `Content-Disposition` when given.
    async fn presigned_get(&self, key: &str, disposition: Option<String>, valid_for: Duration) -> AppResult<String> {
        let config = PresigningConfig::expires_in(valid_for).map_err(AppError::internal)?;
        let get = self.client.get_object().bucket(&self.bucket).key(key).set_response_content_disposition(disposition);
        Ok(get.presigned(config).await?.uri().to_owned())
    }
}

fn tagging(state: &str) -> String {
    format!("<Tagging><TagSet><Tag><Key>{STATE_TAG}</Key><Value>{state}</Value></Tag></TagSet></Tagging>")
}

#[async_trait]
impl FileStore for S3Files {
    async fn upload_form(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        valid_for: Duration,
    ) -> AppResult<UploadForm> {
        let credentials = self.credentials.provide_credentials().await.map_err(AppError::internal)?;
        let now = SystemTime::now();
        let now_utc: DateTime<Utc> = now.into();
        let expires_at = (now_utc + valid_for).to_rfc3339_opts(SecondsFormat::Millis, true);
        let date = now_utc.format("%Y%m%d").to_string();
        let mut fields = BTreeMap::from([
            ("key".to_owned(), key.to_owned()),
            ("Content-Type".to_owned(), content_type.to_owned()),
            ("tagging".to_owned(), tagging(PENDING)),
            ("x-amz-algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            (
                "x-amz-credential".to_owned(),
                format!("{}/{date}/{}/s3/aws4_request", credentials.access_key_id(), self.region),
            ),
            ("x-amz-date".to_owned(), now_utc.format("%Y%m%dT%H%M%SZ").to_string()),
        ]);
        if let Some(token) = credentials.session_token() {
            fields.insert("x-amz-security-token".to_owned(), token.to_owned());
        }
        let mut conditions: Vec<serde_json::Value> = vec![serde_json::json!({ "bucket": self.bucket })];
        conditions.extend(fields.iter().map(|(name, value)| serde_json::json!({ name: value })));
        conditions.push(serde_json::json!(["content-length-range", size, size]));
        let policy = serde_json::json!({ "expiration": expires_at, "conditions": conditions });
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let signing_key =
            aws_sigv4::sign::v4::generate_signing_key(credentials.secret_access_key(), now, &self.region, "s3");
        let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, policy.as_bytes());
        fields.insert("policy".to_owned(), policy);
        fields.insert("x-amz-signature".to_owned(), signature);
        Ok(UploadForm { url: self.bucket_url.clone(), fields, expires_at })
    }

    async fn read_url(&self, key: &str, valid_for: Duration) -> AppResult<String> {
        self.presigned_get(key, None, valid_for).await
    }

    async fn download_url(&self, key: &str, file_name: &str, valid_for: Duration) -> AppResult<String> {
        self.presigned_get(key, Some(format!("attachment; filename=\"{file_name}\"")), valid_for).await
    }

    async fn head(&self, key: &str) -> AppResult<Option<StoredObject>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(StoredObject {
                size: out.content_length.unwrap_or(0).try_into().unwrap_or(0),
                content_type: out.content_type,
            })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, key: &str) -> AppResult<Option<Vec<u8>>> {
        match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.body.collect().await.map_err(AppError::internal)?.to_vec())),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str, attached: bool) -> AppResult<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .tagging(format!("{STATE_TAG}={}", if attached { ATTACHED } else { PENDING }))
            .body(ByteStream::from(bytes))
            .send()
            .await?;
        Ok(())
    }

    async fn mark_attached(&self, keys: &[String]) -> AppResult<()> {
        let tag = Tag::builder().key(STATE_TAG).value(ATTACHED).build()?;
        let tagging = &Tagging::builder().tag_set(tag).build()?;
        try_join_all(keys.iter().map(|key| async move {
            let out =
                self.client.put_object_tagging().bucket(&self.bucket).key(key).tagging(tagging.clone()).send().await;
            match out {
                Ok(_) => Ok(()),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
                Err(e) => Err(AppError::from(e)),
            }
        }))
        .await?;
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> AppResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let objects =
            keys.iter().map(|key| ObjectIdentifier::builder().key(key).build()).collect::<Result<Vec<_>, _>>()?;
        let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build()?;
        let out = self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await?;
        if let Some(error) = out.errors.as_deref().and_then(<[_]>::first) {
            return Err(AppError::internal(format!("DeleteObjects failed for {:?}: {:?}", error.key, error.code)));
        }
        Ok(())
    }
}

//! [`FileStore`] in memory: objects in a map. A form's "upload" is [`InMemoryFiles::upload`], which holds the
//! bytes to the form's declared type and size as S3 holds a POST to its policy.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{AppError, AppResult};
use crate::ports::{FileStore, StoredObject, UploadForm};

#[derive(Clone, Debug)]
struct Object {
    bytes: Vec<u8>,
    content_type: String,
    attached: bool,
}

#[derive(Default)]
pub struct InMemoryFiles {
    objects: Mutex<HashMap<String, Object>>,
    /// key → (content type, size) of each form issued
    forms: Mutex<HashMap<String, (String, u64)>>,
}

pub const MEMORY_BUCKET_URL: &str = "memory://attachments";

impl InMemoryFiles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Posts `bytes` with the form issued for `form.fields["key"]`; refused like S3 refuses a POST that breaks
    /// its policy.
    pub fn upload(&self, form: &UploadForm, bytes: &[u8]) -> AppResult<()> {
        let key = form.fields.get("key").ok_or_else(|| AppError::internal("form without key"))?;
        let (content_type, size) =
            self.forms.lock().unwrap().get(key).cloned().ok_or_else(|| AppError::internal("no such form"))?;
        if bytes.len() as u64 != size {
            return Err(AppError::PayloadTooLarge("the upload is not the declared size".into()));
        }
        let object = Object { bytes: bytes.to_vec(), content_type, attached: false };
        self.objects.lock().unwrap().insert(key.clone(), object);
        Ok(())
    }

    pub fn exists(&self, key: &str) -> bool {
        self.objects.lock().unwrap().contains_key(key)
    }

    /// Whether the object is tagged attached (spared by the never-attached expiry).
    pub fn is_attached(&self, key: &str) -> bool {
        self.objects.lock().unwrap().get(key).is_some_and(|o| o.attached)
    }
}

#[async_trait]
impl FileStore for InMemoryFiles {
    async fn upload_form(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        _valid_for: Duration,
    ) -> AppResult<UploadForm> {
        self.forms.lock().unwrap().insert(key.to_owned(), (content_type.to_owned(), size));
        let fields = [("key", key), ("Content-Type", content_type)]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Ok(UploadForm { url: MEMORY_BUCKET_URL.into(), fields, expires_at: "2099-01-01T00:00:00.000Z".into() })
    }

    async fn read_url(&self, key: &str, valid_for: Duration) -> AppResult<String> {
        Ok(format!("{MEMORY_BUCKET_URL}/{key}?expires={}", valid_for.as_secs()))
    }

    async fn download_url(&self, key: &str, file_name: &str, valid_for: Duration) -> AppResult<String> {
        Ok(format!("{MEMORY_BUCKET_URL}/{key}?expires={}&saveAs={file_name}", valid_for.as_secs()))
    }

    async fn head(&self, key: &str) -> AppResult<Option<StoredObject>> {
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .get(key)
            .map(|o| StoredObject { size: o.bytes.len() as u64, content_type: Some(o.content_type.clone()) }))
    }

    async fn get(&self, key: &str) -> AppResult<Option<Vec<u8>>> {
        Ok(self.objects.lock().unwrap().get(key).map(|o| o.bytes.clone()))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str, attached: bool) -> AppResult<()> {
        let object = Object { bytes, content_type: content_type.to_owned(), attached };
        self.objects.lock().unwrap().insert(key.to_owned(), object);
        Ok(())
    }

    async fn mark_attached(&self, keys: &[String]) -> AppResult<()> {
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            if let Some(object) = objects.get_mut(key) {
                object.attached = true;
            }
        }
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> AppResult<()> {
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            objects.remove(key);
        }
        Ok(())
    }
}

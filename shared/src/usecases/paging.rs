//! Pages of lists with signed cursors: the one place that knows page sizes, `page=` offsets and how a cursor
//! binds a position to its list and its reader (see [`crate::cursor`]).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::cursor::CursorCodec;
use crate::error::{AppError, AppResult};

/// One page of a list. `nextCursor` is absent on the last page.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Signs and reads cursors. Needs the deployment's key, so only the functions that page (the REST API) have one.
#[derive(Clone, Debug)]
pub struct Pager {
    cursors: CursorCodec,
}

impl Pager {
    pub fn new(cursors: CursorCodec) -> Self {
        Pager { cursors }
    }

    /// The position a cursor holds, if it was issued for `scope`; a 400 otherwise.
    pub fn position<T: DeserializeOwned>(&self, scope: &str, cursor: &str) -> AppResult<T> {
        serde_json::from_value(self.cursors.decode(scope, cursor)?)
            .map_err(|_| AppError::BadRequest("invalid cursor".into()))
    }

    pub fn cursor(&self, scope: &str, position: impl Serialize) -> String {
        self.cursors.encode(scope, json!(position))
    }

    /// Trims a page fetched with one extra item to `limit`; if the extra item was there, a cursor after the
    /// last kept item.
    pub fn next_cursor<T, P: Serialize>(
        &self,
        scope: &str,
        items: &mut Vec<T>,
        limit: usize,
        position: impl Fn(&T) -> P,
    ) -> Option<String> {
        if items.len() <= limit {
            return None;
        }
        items.truncate(limit);
        items.last().map(|last| self.cursor(scope, position(last)))
    }
}

/// A requested page size within `(default, max)`.
pub fn page_size(requested: Option<u64>, (default, max): (u64, u64)) -> AppResult<usize> {
    match requested.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n as usize),
        _ => Err(AppError::Validation(format!("limit must be between 1 and {max}"))),
    }
}

/// Items before 1-based page `page` of size `limit`.
pub fn page_offset(page: Option<u64>, limit: usize) -> AppResult<usize> {
    match page {
        None => Ok(0),
        Some(0) => Err(AppError::Validation("page starts at 1".into())),
        Some(p) => Ok(usize::try_from(p - 1).unwrap_or(usize::MAX).saturating_mul(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE_PAGE: (u64, u64) = (50, 100);

    #[test]
    fn page_sizes_and_offsets_are_validated() {
        assert_eq!(page_size(None, MESSAGE_PAGE).unwrap(), 50);
        assert_eq!(page_size(Some(100), MESSAGE_PAGE).unwrap(), 100);
        assert!(page_size(Some(0), MESSAGE_PAGE).is_err());
        assert!(page_size(Some(101), MESSAGE_PAGE).is_err());
        assert!(page_size(Some(51), (20, 50)).is_err());
        assert_eq!(page_offset(None, 20).unwrap(), 0);
        assert_eq!(page_offset(Some(3), 20).unwrap(), 40);
        assert!(page_offset(Some(0), 20).is_err());
        assert_eq!(page_offset(Some(u64::MAX), 20).unwrap(), usize::MAX);
    }
}

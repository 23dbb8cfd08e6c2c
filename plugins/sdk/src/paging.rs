//! Cursor paging. The contract's cursors are opaque strings; most vendor APIs
//! page by offset (`?offset=…&limit=…`) or hand out a next-page URL. These
//! helpers turn both into contract cursors so connectors do not reinvent them.

use crate::ConnectorError;

/// An offset cursor: where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offset(pub u64);

impl Offset {
    /// Decodes the cursor the host passed back (`None` = first page).
    pub fn decode(cursor: Option<&str>) -> Result<Offset, ConnectorError> {
        match cursor {
            None => Ok(Offset(0)),
            Some(c) => c
                .parse()
                .map(Offset)
                .map_err(|_| ConnectorError::Invalid(format!("bad paging cursor `{c}`"))),
        }
    }

    /// The cursor for the page after one of `got` items out of a page of
    /// `limit`: `None` when the page was short, i.e. the last one.
    pub fn next(self, got: usize, limit: usize) -> Option<String> {
        (got >= limit && limit > 0).then(|| (self.0 + got as u64).to_string())
    }
}

/// Slices an in-memory list into a page: the items of the page and the next
/// cursor. Handy for vendors that return everything at once.
pub fn page_of<T: Clone>(
    all: &[T],
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ConnectorError> {
    let start = usize::try_from(Offset::decode(cursor)?.0)
        .unwrap_or(usize::MAX)
        .min(all.len());
    let end = start.saturating_add(limit).min(all.len());
    let next = (end < all.len()).then(|| end.to_string());
    Ok((all[start..end].to_vec(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_in_memory_lists() {
        let all: Vec<u32> = (0..5).collect();
        assert_eq!(
            page_of(&all, None, 2).unwrap(),
            (vec![0, 1], Some("2".into()))
        );
        assert_eq!(page_of(&all, Some("4"), 2).unwrap(), (vec![4], None));
        assert!(page_of(&all, Some("x"), 2).is_err());
        assert_eq!(Offset(10).next(5, 5), Some("15".into()));
        assert_eq!(Offset(10).next(3, 5), None);
    }
}

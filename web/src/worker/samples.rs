//! The worker's samples: each one's stored image (downscaled, encoded) and its embedding in a
//! cache keyed by the backbone that made it.

use std::collections::HashMap;

use graft::backbone::BackboneKey;
use graft::embed::EmbeddingCache;
use graft::preprocess::StoredImage;

#[derive(Default)]
pub struct SampleStore {
    images: HashMap<u64, StoredImage>,
    embeddings: Option<EmbeddingCache>,
}

impl SampleStore {
    /// The cache for `key`, emptied if it held another backbone's features.
    fn cache_for(&mut self, key: &BackboneKey, dim: usize) -> &mut EmbeddingCache {
        if self.embeddings.as_ref().is_some_and(|c| c.key() != key) {
            self.embeddings = None;
        }
        self.embeddings.get_or_insert_with(|| EmbeddingCache::new(key.clone(), dim))
    }

    pub fn insert(&mut self, id: u64, image: StoredImage, key: &BackboneKey, row: Vec<f32>) -> Result<(), String> {
        self.cache_for(key, row.len()).insert(key, id, row).map_err(|e| e.to_string())?;
        self.images.insert(id, image);
        Ok(())
    }

    pub fn remove(&mut self, id: u64) {
        self.images.remove(&id);
        if let Some(cache) = &mut self.embeddings {
            cache.remove(id);
        }
    }

    pub fn image(&self, id: u64) -> Option<&StoredImage> {
        self.images.get(&id)
    }

    /// The embedding of `id`, if it was made by `key`.
    pub fn embedding(&self, key: &BackboneKey, id: u64) -> Option<&[f32]> {
        self.embeddings.as_ref().filter(|c| c.key() == key)?.get(id)
    }

    pub fn export(&self) -> Option<EmbeddingCache> {
        self.embeddings.clone()
    }

    /// Adds an exported cache; it must come from backbone `key`.
    pub fn import(&mut self, key: &BackboneKey, dim: usize, cache: EmbeddingCache) -> Result<Vec<u64>, String> {
        self.cache_for(key, dim).merge(cache).map_err(|e| e.to_string())
    }
}

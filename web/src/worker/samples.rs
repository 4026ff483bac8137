//! The worker's samples: each one's stored image (downscaled, encoded), its thumbnail, and its
//! embedding in a cache keyed by the backbone that made it.

use std::collections::{BTreeMap, HashMap};

use graft::backbone::BackboneKey;
use graft::embed::{EmbeddingCache, FeatureExtractor};
use graft::preprocess::{decode_image, image_from_rgba, store_image, InputSpec, StoredImage};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::protocol::ImageData;
use graft::message::UserMessage;

/// Shorter side of a thumbnail, in pixels (the class cards show them at 48 px, twice that
/// for high-density screens).
const THUMBNAIL_SIDE: u32 = 96;

/// A sample's small picture for the page (JPEG, or PNG when already tiny).
pub fn thumbnail(image: &RgbImage) -> Result<StoredImage, UserMessage> {
    let spec = InputSpec { resize_shorter: THUMBNAIL_SIDE, ..InputSpec::imagenet() };
    store_image(image, &spec).map_err(UserMessage::from)
}

/// Everything the worker keeps of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSample {
    pub image: StoredImage,
    pub thumbnail: StoredImage,
}

/// An image file or webcam frame decoded (format sniffing, size limits, orientation).
pub fn decode(image: ImageData) -> Result<RgbImage, UserMessage> {
    match image {
        ImageData::File { file_name, bytes } => decode_image(&file_name, &bytes),
        ImageData::Frame { width, height, rgba } => image_from_rgba("webcam frame", width, height, rgba),
    }
    .map_err(UserMessage::from)
}

/// A new sample: decoded, stored (downscaled and encoded, with its thumbnail) and embedded
/// `(feature_dim,)`. The model worker and the embedding pool's workers both make samples here.
pub async fn make_sample(
    extractor: &FeatureExtractor,
    image: ImageData,
) -> Result<(StoredSample, Vec<f32>), UserMessage> {
    let image = decode(image)?;
    let features = extractor.embed(std::slice::from_ref(&image)).await.map_err(UserMessage::from)?;
    let row = features.squeeze(0).and_then(|f| f.to_vec1()).map_err(UserMessage::from)?;
    let stored = StoredSample {
        image: store_image(&image, extractor.input_spec()).map_err(UserMessage::from)?,
        thumbnail: thumbnail(&image)?,
    };
    Ok((stored, row))
}

#[derive(Default)]
pub struct SampleStore {
    samples: HashMap<u64, StoredSample>,
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

    pub fn insert(
        &mut self,
        id: u64,
        sample: StoredSample,
        key: &BackboneKey,
        row: Vec<f32>,
    ) -> Result<(), UserMessage> {
        self.cache_for(key, row.len()).insert(key, id, row).map_err(UserMessage::from)?;
        self.samples.insert(id, sample);
        Ok(())
    }

    pub fn remove(&mut self, id: u64) {
        self.samples.remove(&id);
        if let Some(cache) = &mut self.embeddings {
            cache.remove(id);
        }
    }

    /// Every sample's id.
    pub fn ids(&self) -> Vec<u64> {
        self.samples.keys().copied().collect()
    }

    pub fn sample(&self, id: u64) -> Option<&StoredSample> {
        self.samples.get(&id)
    }

    pub fn image(&self, id: u64) -> Option<&StoredImage> {
        self.samples.get(&id).map(|s| &s.image)
    }

    /// The stored images of `ids` (those it holds), for a project file.
    pub fn images_of<'a>(&self, ids: impl IntoIterator<Item = &'a u64>) -> BTreeMap<u64, StoredImage> {
        ids.into_iter().filter_map(|&id| Some((id, self.image(id)?.clone()))).collect()
    }

    /// The embedding of `id`, if it was made by `key`.
    pub fn embedding(&self, key: &BackboneKey, id: u64) -> Option<&[f32]> {
        self.embeddings.as_ref().filter(|c| c.key() == key)?.get(id)
    }

    pub fn export(&self) -> Option<EmbeddingCache> {
        self.embeddings.clone()
    }

    /// Adds an exported cache; it must come from backbone `key`.
    pub fn import(&mut self, key: &BackboneKey, dim: usize, cache: EmbeddingCache) -> Result<Vec<u64>, UserMessage> {
        self.cache_for(key, dim).merge(cache).map_err(UserMessage::from)
    }
}

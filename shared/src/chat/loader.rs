//! Per-user brains (issue #23): a request's agents are the built-in ones plus the agents of the
//! plugins the user installed.
//!
//! - **Which plugins.** The user's home keeps the installed plugins whose live version declares
//!   agents ([`InstalledPlugin`]: plugin id and live version id) and answers them with the
//!   admission ([`crate::home::ops::ChatChoices::plugins`]), so the hot path reads no D1. The
//!   worker pushes the set on every install and uninstall; the home reloads it from D1 with its
//!   account copy (at most a minute old), which is how a
//!   newly approved version or a plugin that stopped being approved reaches the home.
//! - **No plugin agents** (most users): the isolate's built-in [`Brain`] as it always was — no
//!   lookup, no allocation ([`UserBrain::Builtin`]).
//! - **Otherwise** the brain of exactly that set: the standard registry plus each version's
//!   [`PluginAgent`]s (plugins in plugin-id order), a chat template per plugin agent, and a
//!   sanitizer built from the whole registry's prompts, so plugin instructions are fingerprinted
//!   exactly like ours. Brains are cached per isolate by the sorted version ids
//!   ([`BRAIN_CACHE_SIZE`], least recently used out); each version's agents are cached by
//!   version id ([`VERSION_CACHE_SIZE`]). Only versions missing from that cache are read, in
//!   one query ([`PluginVersions`]), and only versions of plugins still approved are answered.
//!   A brain missing a version it was asked for (D1 no longer has it approved) is used for that
//!   request but not cached. A new approved version has a new id, so it is a new key: nothing
//!   stale is served under it; uninstalling changes the set, so the next request's key differs.
//!
//! One user's set never reaches another user's request: the key is the set itself, and a brain
//! holds nothing but reviewed plugin text and the product's prompts.

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::rc::Rc;

use async_trait::async_trait;
use lru::LruCache;

use super::orchestrator::Brain;
use super::plans::PromptTemplateRegistry;
use super::plugin_agent::{plugin_agents, PluginAgent};
use super::registry::AgentRegistry;
use crate::error::AppError;
use crate::home::ops::InstalledPlugin;
use crate::marketplace::PluginManifest;
use crate::ports::StoreError;

/// Brains of distinct plugin sets one isolate keeps.
pub const BRAIN_CACHE_SIZE: usize = 32;
/// Plugin versions whose agents one isolate keeps.
pub const VERSION_CACHE_SIZE: usize = 128;

/// One approved plugin version as storage has it.
#[derive(Debug, Clone)]
pub struct LoadedVersion {
    /// The plugin.
    pub plugin_id: uuid::Uuid,
    /// The version.
    pub version_id: uuid::Uuid,
    /// Its checked manifest.
    pub manifest: PluginManifest,
}

/// Where versions' manifests come from (D1 in the worker).
#[async_trait(?Send)]
pub trait PluginVersions {
    /// The manifests of `wanted` (one query), leaving out versions that do not belong to the
    /// named plugin, were never approved, or whose plugin is no longer approved.
    async fn versions(&self, wanted: &[InstalledPlugin]) -> Result<Vec<LoadedVersion>, StoreError>;
}

/// A request's brain.
#[derive(Debug, Clone)]
pub enum UserBrain {
    /// The isolate's built-in brain (no plugin agents).
    Builtin(&'static Brain),
    /// The brain of the user's plugin set.
    Plugins(Rc<Brain>),
}

impl std::ops::Deref for UserBrain {
    type Target = Brain;
    fn deref(&self) -> &Brain {
        match self {
            Self::Builtin(b) => b,
            Self::Plugins(b) => b,
        }
    }
}

/// The per-isolate caches (see the module docs).
pub struct BrainCache {
    brains: LruCache<Vec<uuid::Uuid>, Rc<Brain>>,
    versions: LruCache<uuid::Uuid, Rc<[PluginAgent]>>,
}

impl std::fmt::Debug for BrainCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrainCache")
            .field("brains", &self.brains.len())
            .field("versions", &self.versions.len())
            .finish()
    }
}

impl Default for BrainCache {
    fn default() -> Self {
        Self::new(BRAIN_CACHE_SIZE, VERSION_CACHE_SIZE)
    }
}

fn cap(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl BrainCache {
    /// Caches of these sizes.
    pub fn new(brains: usize, versions: usize) -> Self {
        Self {
            brains: LruCache::new(cap(brains)),
            versions: LruCache::new(cap(versions)),
        }
    }

    /// Brains cached.
    pub fn brains(&self) -> usize {
        self.brains.len()
    }

    /// Versions cached.
    pub fn versions(&self) -> usize {
        self.versions.len()
    }
}

/// The key of a set: its version ids, sorted.
fn key_of(set: &[InstalledPlugin]) -> Vec<uuid::Uuid> {
    let mut key: Vec<uuid::Uuid> = set.iter().map(|p| p.version_id).collect();
    key.sort_unstable();
    key.dedup();
    key
}

/// The brain of a user whose home lists `set` (see the module docs).
///
/// # Errors
/// 503 when a version must be read and storage fails.
pub async fn brain_for(
    cache: &RefCell<BrainCache>,
    builtin: &'static Brain,
    set: &[InstalledPlugin],
    source: &dyn PluginVersions,
) -> Result<UserBrain, AppError> {
    if set.is_empty() {
        return Ok(UserBrain::Builtin(builtin));
    }
    let key = key_of(set);
    if let Some(b) = cache.borrow_mut().brains.get(&key) {
        return Ok(UserBrain::Plugins(Rc::clone(b)));
    }
    let mut ordered = set.to_vec();
    ordered.sort();
    ordered.dedup_by_key(|p| p.plugin_id);
    let missing: Vec<InstalledPlugin> = {
        let mut c = cache.borrow_mut();
        ordered
            .iter()
            .filter(|p| c.versions.get(&p.version_id).is_none())
            .copied()
            .collect()
    };
    if !missing.is_empty() {
        let loaded = source.versions(&missing).await?;
        let mut c = cache.borrow_mut();
        for v in loaded {
            let asked = missing
                .iter()
                .any(|m| m.version_id == v.version_id && m.plugin_id == v.plugin_id);
            if asked {
                let agents: Rc<[PluginAgent]> = plugin_agents(v.plugin_id, &v.manifest).into();
                c.versions.put(v.version_id, agents);
            }
        }
    }
    let mut c = cache.borrow_mut();
    let mut registry = AgentRegistry::standard();
    let mut complete = true;
    let mut names: Vec<&'static str> = Vec::new();
    for p in &ordered {
        let Some(agents) = c.versions.get(&p.version_id) else {
            complete = false;
            tracing::warn!(plugin_id = %p.plugin_id, version_id = %p.version_id,
                "an installed plugin version is not approved (any more); its agents are left out");
            continue;
        };
        for agent in agents.iter() {
            use super::agent::ChatAgent as _;
            if registry.register(Box::new(agent.clone())).is_ok() {
                names.push(agent.name());
            }
        }
    }
    let templates = PromptTemplateRegistry::with_plugin_agents(names.iter().copied());
    let brain = Rc::new(Brain::new(registry, templates));
    if complete {
        c.brains.put(key, Rc::clone(&brain));
    }
    Ok(UserBrain::Plugins(brain))
}

#[cfg(test)]
mod tests;

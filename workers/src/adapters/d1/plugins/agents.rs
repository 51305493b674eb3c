//! What the chat needs of the marketplace (issue #23): a user's installed plugins whose live
//! version declares agents (for their home's set), and approved versions' manifests (read on an
//! isolate's cache miss only, see [`shared::chat::loader`]).

use async_trait::async_trait;
use serde::Deserialize;
use shared::chat::loader::{LoadedVersion, PluginVersions};
use shared::domain::UserId;
use shared::home::ops::InstalledPlugin;
use shared::ports::StoreError;

use super::super::super::unavailable;
use super::super::{stmt, text, Db};
use super::rows::{parse_manifest, parse_uuid};

/// Most installed plugins with agents a user's chat loads (the earliest installed): with at
/// most 3 agents each, 60 plugin agents besides the built-in ones.
pub const MAX_AGENT_PLUGINS: u32 = 20;

const SELECT_INSTALLED_WITH_AGENTS: &str =
    "SELECT p.id AS plugin_id, p.live_version_id AS version_id \
     FROM plugin_installations i JOIN plugins p ON p.id = i.plugin_id \
     WHERE i.user_id = ?1 AND p.status = 'approved' AND p.live_version_id IS NOT NULL \
       AND COALESCE(json_array_length(p.manifest, '$.agents'), 0) > 0 \
     ORDER BY i.installed_at, p.id LIMIT ?2";

// A version of a plugin still approved, that was approved itself (live or superseded since).
const SELECT_VERSIONS: &str =
    "SELECT v.plugin_id AS plugin_id, v.id AS version_id, v.manifest AS manifest \
     FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id \
     WHERE p.status = 'approved' AND v.status IN ('approved', 'superseded') \
       AND v.id IN (SELECT value FROM json_each(?1))";

/// The chat's reads of the marketplace tables.
pub struct D1PluginAgents(pub Db);

#[derive(Deserialize)]
struct SetRow {
    plugin_id: String,
    version_id: String,
}

#[derive(Deserialize)]
struct ManifestRow {
    plugin_id: String,
    version_id: String,
    manifest: String,
}

impl D1PluginAgents {
    /// The installed plugins of `user` whose live version declares agents, sorted by plugin id.
    ///
    /// # Errors
    /// D1 failures.
    pub async fn installed(&self, user: UserId) -> Result<Vec<InstalledPlugin>, StoreError> {
        let what = "reading installed plugins";
        let rows = stmt(
            &self.0,
            SELECT_INSTALLED_WITH_AGENTS,
            &[
                text(user.to_string()),
                super::super::int(i64::from(MAX_AGENT_PLUGINS)),
            ],
        )?
        .all()
        .await
        .map_err(|e| unavailable(what, &e))?
        .results::<SetRow>()
        .map_err(|e| unavailable(what, &e))?;
        let mut set = rows
            .into_iter()
            .map(|r| {
                Ok(InstalledPlugin {
                    plugin_id: parse_uuid(&r.plugin_id, "plugins", "id")?,
                    version_id: parse_uuid(&r.version_id, "plugins", "live_version_id")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        set.sort();
        Ok(set)
    }
}

#[async_trait(?Send)]
impl PluginVersions for D1PluginAgents {
    async fn versions(&self, wanted: &[InstalledPlugin]) -> Result<Vec<LoadedVersion>, StoreError> {
        let what = "reading plugin versions";
        let ids: Vec<String> = wanted.iter().map(|w| w.version_id.to_string()).collect();
        let ids = serde_json::to_string(&ids)
            .map_err(|e| StoreError::Unavailable(format!("{what}: {e}")))?;
        let rows = stmt(&self.0, SELECT_VERSIONS, &[text(ids)])?
            .all()
            .await
            .map_err(|e| unavailable(what, &e))?
            .results::<ManifestRow>()
            .map_err(|e| unavailable(what, &e))?;
        rows.into_iter()
            .map(|r| {
                Ok(LoadedVersion {
                    plugin_id: parse_uuid(&r.plugin_id, "plugin_versions", "plugin_id")?,
                    version_id: parse_uuid(&r.version_id, "plugin_versions", "id")?,
                    manifest: parse_manifest(&r.manifest, "plugin_versions")?,
                })
            })
            .filter(|v| {
                // Only versions of the plugin they were asked under.
                v.as_ref().map_or(true, |v: &LoadedVersion| {
                    wanted
                        .iter()
                        .any(|w| w.version_id == v.version_id && w.plugin_id == v.plugin_id)
                })
            })
            .collect()
    }
}

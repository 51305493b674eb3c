//! The marketplace's SQL statements.

/// Recomputes a plugin's counters from its installations and ratings (`?1` = plugin).
pub(super) const RECOUNT: &str = "UPDATE plugins SET \
       install_count = (SELECT COUNT(*) FROM plugin_installations WHERE plugin_id = ?1), \
       rating_sum = (SELECT COALESCE(SUM(rating), 0) FROM plugin_ratings WHERE plugin_id = ?1), \
       rating_count = (SELECT COUNT(*) FROM plugin_ratings WHERE plugin_id = ?1) \
     WHERE id = ?1";

pub(super) const PLUGIN_COLUMNS: &str =
    "id, author_id, status, manifest, install_count, rating_sum, \
     rating_count, created_at, approved_at";

/// Versions pending review of the author `?2` (a plugin insert) — the limit's subject.
pub(super) const INSERT_PLUGIN: &str =
    "INSERT INTO plugins (id, author_id, status, created_at, updated_at) \
     SELECT ?1, ?2, 'pending_review', ?3, ?3 \
     WHERE (SELECT COUNT(*) FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id \
            WHERE v.status = 'pending_review' AND p.author_id = ?2) < ?4";

/// Inserts a version of plugin `?2` while its author has fewer than `?11` versions pending
/// review (in the batch of a new plugin, the plugin row inserted just before is the guard).
pub(super) const INSERT_VERSION: &str =
    "INSERT INTO plugin_versions (id, plugin_id, version, manifest, \
       package_key, package_checksum, package_size, status, submitted_at, decided_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
     WHERE EXISTS (SELECT 1 FROM plugins WHERE id = ?2) \
       AND (SELECT COUNT(*) FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id \
            WHERE v.status = 'pending_review' \
              AND p.author_id = (SELECT author_id FROM plugins WHERE id = ?2)) < ?11";

pub(super) const PENDING_BY_AUTHOR: &str = "SELECT COUNT(*) AS total FROM plugin_versions v \
     JOIN plugins p ON p.id = v.plugin_id \
     WHERE v.status = 'pending_review' AND p.author_id = ?1";

pub(super) const SELECT_PLUGIN: &str =
    "SELECT id, author_id, status, manifest, install_count, rating_sum, \
       rating_count, created_at, approved_at \
     FROM plugins WHERE id = ?1";

pub(super) const SELECT_VERSIONS: &str =
    "SELECT id, plugin_id, manifest, package_key, package_checksum, \
       package_size, status, submitted_at, decided_at \
     FROM plugin_versions WHERE plugin_id = ?1 ORDER BY submitted_at, rowid";

pub(super) const SELECT_LIVE_VERSION: &str =
    "SELECT v.id, v.plugin_id, v.manifest, v.package_key, \
       v.package_checksum, v.package_size, v.status, v.submitted_at, v.decided_at \
     FROM plugins p JOIN plugin_versions v ON v.id = p.live_version_id \
     WHERE p.id = ?1";

/// Pending versions with their plugin; the plugin's columns are prefixed `p_`.
pub(super) const SELECT_PENDING: &str = "SELECT v.id, v.plugin_id, v.manifest, v.package_key, \
       v.package_checksum, v.package_size, v.status, v.submitted_at, v.decided_at, \
       p.author_id AS p_author_id, p.status AS p_status, p.manifest AS p_manifest, \
       p.install_count AS p_install_count, p.rating_sum AS p_rating_sum, \
       p.rating_count AS p_rating_count, p.created_at AS p_created_at, \
       p.approved_at AS p_approved_at \
     FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id \
     WHERE v.status = 'pending_review' \
     ORDER BY v.submitted_at, v.rowid LIMIT ?1";

/// Records the review (`?1` id, `?2` plugin, `?3` version, `?4` reviewer, `?5` decision,
/// `?6` notes, `?7` time) only while the version is pending: the gate of the whole decision.
pub(super) const INSERT_REVIEW: &str = "INSERT INTO plugin_reviews \
       (id, plugin_id, version_id, reviewer_id, decision, notes, reviewed_at) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 \
     WHERE EXISTS (SELECT 1 FROM plugin_versions \
       WHERE id = ?3 AND plugin_id = ?2 AND status = 'pending_review')";

/// Approve, 1: the previous live version (`?1` review, `?2` plugin).
pub(super) const SUPERSEDE_LIVE: &str = "UPDATE plugin_versions SET status = 'superseded' \
     WHERE plugin_id = ?2 AND status = 'approved' \
       AND EXISTS (SELECT 1 FROM plugin_reviews WHERE id = ?1)";

/// Approve, 2: the plugin takes the version's manifest (`?1` review, `?2` plugin,
/// `?3` version, `?4` time).
pub(super) const GO_LIVE: &str = "UPDATE plugins SET status = 'approved', live_version_id = v.id, \
       name = json_extract(v.manifest, '$.name'), \
       description = json_extract(v.manifest, '$.description'), \
       category = json_extract(v.manifest, '$.category'), \
       price_cents = json_extract(v.manifest, '$.price_cents'), \
       manifest = v.manifest, approved_at = ?4, updated_at = ?4 \
     FROM plugin_versions v \
     WHERE v.id = ?3 AND v.plugin_id = ?2 AND plugins.id = ?2 \
       AND EXISTS (SELECT 1 FROM plugin_reviews WHERE id = ?1)";

/// Reject: a plugin without a live version becomes rejected (`?1` review, `?2` plugin,
/// `?3` time).
pub(super) const REJECT_PLUGIN: &str = "UPDATE plugins SET \
       status = CASE WHEN live_version_id IS NULL THEN 'rejected' ELSE status END, \
       updated_at = ?3 \
     WHERE id = ?2 AND EXISTS (SELECT 1 FROM plugin_reviews WHERE id = ?1)";

/// Last of a decision: the version itself (`?1` review, `?2` plugin, `?3` version, `?4` time,
/// `?5` new status).
pub(super) const DECIDE_VERSION: &str = "UPDATE plugin_versions SET status = ?5, decided_at = ?4 \
     WHERE id = ?3 AND plugin_id = ?2 \
       AND EXISTS (SELECT 1 FROM plugin_reviews WHERE id = ?1)";

/// Approved plugins, optionally of one category (`?1`) and containing `?2` in the name or the
/// description, ignoring ASCII case. `instr` rather than `LIKE`: D1 refuses `LIKE` patterns
/// over 50 bytes ("pattern too complex"), and a needle has no wildcards to escape this way.
pub(super) const CATALOG_FILTER: &str = "FROM plugins WHERE status = 'approved'
       AND (?1 IS NULL OR category = ?1)
       AND (?2 IS NULL OR instr(lower(name), lower(?2)) > 0
            OR instr(lower(description), lower(?2)) > 0)";

pub(super) const ORDER_BY_RATING: &str = "rating_count = 0, \
     CAST(rating_sum AS REAL) / NULLIF(rating_count, 0) DESC, rating_count DESC, id";
pub(super) const ORDER_BY_INSTALLS: &str = "install_count DESC, id";
pub(super) const ORDER_BY_NEWEST: &str = "approved_at DESC, id";

pub(super) const SELECT_INSTALLED_AT: &str =
    "SELECT installed_at FROM plugin_installations WHERE plugin_id = ?1 AND user_id = ?2";

pub(super) const SELECT_PURCHASE: &str =
    "SELECT id, plugin_id, user_id, developer_id, amount_cents, \
       developer_share_cents, platform_share_cents, currency, stripe_payment_id, period, \
       created_at \
     FROM revenue_events WHERE plugin_id = ?1 AND user_id = ?2";

/// A purchase, once per buyer and plugin. Only that uniqueness is tolerated: a broken CHECK
/// still fails the batch (`INSERT OR IGNORE` would silently skip it).
pub(super) const INSERT_PURCHASE: &str = "INSERT INTO revenue_events (id, plugin_id, user_id, \
       developer_id, amount_cents, developer_share_cents, platform_share_cents, currency, \
       stripe_payment_id, period, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
     ON CONFLICT (plugin_id, user_id) DO NOTHING";

pub(super) const INSERT_INSTALLATION: &str = "INSERT INTO plugin_installations \
       (plugin_id, user_id, installed_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (plugin_id, user_id) DO NOTHING";

pub(super) const DELETE_INSTALLATION: &str =
    "DELETE FROM plugin_installations WHERE plugin_id = ?1 AND user_id = ?2";

pub(super) const DELETE_RATING: &str =
    "DELETE FROM plugin_ratings WHERE plugin_id = ?1 AND user_id = ?2";

/// Sets a rating only while the user has the plugin installed (a rating racing an uninstall
/// writes nothing).
pub(super) const UPSERT_RATING: &str =
    "INSERT INTO plugin_ratings (plugin_id, user_id, rating, updated_at) \
     SELECT ?1, ?2, ?3, ?4 \
     WHERE EXISTS (SELECT 1 FROM plugin_installations WHERE plugin_id = ?1 AND user_id = ?2) \
     ON CONFLICT (plugin_id, user_id) DO UPDATE SET \
       rating = excluded.rating, updated_at = excluded.updated_at";

pub(super) const SELECT_TALLY: &str = "SELECT rating_sum, rating_count FROM plugins WHERE id = ?1";

pub(super) const SELECT_RATING: &str =
    "SELECT rating FROM plugin_ratings WHERE plugin_id = ?1 AND user_id = ?2";

/// Per period of a developer's sales, with the period's payout (at most one: unique per
/// developer and period, so the join never multiplies the sales).
pub(super) const SELECT_EARNINGS: &str = "SELECT r.period, COUNT(*) AS sales, \
       SUM(r.amount_cents) AS gross_cents, SUM(r.developer_share_cents) AS developer_cents, \
       SUM(r.platform_share_cents) AS platform_cents, \
       p.id AS payout_id, p.amount_cents AS payout_amount_cents, p.destination, \
       p.idempotency_key, p.status AS payout_status, p.transfer_id, \
       p.created_at AS payout_created_at, p.paid_at \
     FROM revenue_events r \
     LEFT JOIN payouts p ON p.developer_id = r.developer_id AND p.period = r.period \
     WHERE r.developer_id = ?1 \
     GROUP BY r.period ORDER BY r.period DESC";

pub(super) const SET_PAYOUT_ACCOUNT: &str = "UPDATE users SET stripe_account_id = ?1 WHERE id = ?2";

pub(super) const SELECT_PAYOUT_ACCOUNT: &str = "SELECT stripe_account_id FROM users WHERE id = ?1";

pub(super) const SELECT_DUE_PAYOUTS: &str = "SELECT r.developer_id, r.period, \
       SUM(r.developer_share_cents) AS amount_cents, u.stripe_account_id AS destination \
     FROM revenue_events r JOIN users u ON u.id = r.developer_id \
     WHERE r.payout_id IS NULL AND r.period < ?1 AND u.stripe_account_id IS NOT NULL \
     GROUP BY r.developer_id, r.period \
     ORDER BY r.period, r.developer_id";

pub(super) const INSERT_PAYOUT: &str =
    "INSERT INTO payouts (id, developer_id, period, amount_cents, \
       destination, idempotency_key, status, transfer_id, created_at, paid_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (developer_id, period) DO NOTHING";

pub(super) const SELECT_PAYOUT: &str =
    "SELECT id, developer_id, period, amount_cents, destination, \
       idempotency_key, status, transfer_id, created_at, paid_at \
     FROM payouts WHERE developer_id = ?1 AND period = ?2";

/// Links the payout's period's unpaid events to it (`?1` payout, `?2` transfer).
pub(super) const LINK_PAYOUT: &str =
    "UPDATE revenue_events SET payout_id = ?1, stripe_transfer_id = ?2 \
     WHERE payout_id IS NULL \
       AND (developer_id, period) = (SELECT developer_id, period FROM payouts WHERE id = ?1)";

pub(super) const MARK_PAID: &str =
    "UPDATE payouts SET status = 'paid', transfer_id = ?2, paid_at = ?3 WHERE id = ?1";

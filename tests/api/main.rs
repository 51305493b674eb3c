//! End-to-end tests against the real worker under `wrangler dev`.
//!
//! One binary with its own `main` (libtest-mimic): it starts the stack once (see [`harness`]),
//! runs every test against it (each with its own users), then stops everything. Without the
//! `e2e` feature the tests are listed as ignored, so a plain `cargo test` passes offline.
//! Run them with `scripts/test.sh`, or `cargo test -p tests --features e2e` with the toolchain
//! set up (`. scripts/setup.sh`).

mod accounts;
mod admin;
mod auth;
mod backups;
mod batches;
mod billing;
mod chat;
mod client_kit;
mod console;
mod contract;
mod deletion;
mod export;
mod faults;
mod harness;
mod helpers;
mod home;
mod housekeeping;
mod limits;
mod matrix;
mod plugin_agents;
mod plugins;
mod pressure;
mod privacy;
mod records;
mod security;
mod skeleton;
mod sso;
mod stream;
mod teams;
mod vectors;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Trial};

use helpers::TestApp;

type TestFn = fn(TestApp) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((
            concat!(stringify!($module), "::", stringify!($name)),
            (|app| Box::pin($module::$name(app))) as TestFn,
        )),*]
    };
}

#[allow(clippy::too_many_lines)] // one line per test
fn all_tests() -> Vec<(&'static str, TestFn)> {
    tests![
        batches::a_batch_of_twenty_items_pushes_each_result_to_every_socket_and_get_returns_them,
        batches::cancelling_a_batch_aborts_its_running_upstream_calls_and_starts_no_further_item,
        batches::concurrent_submissions_start_exactly_batch_active_batches_and_the_rest_are_409,
        batches::custom_steps_are_refused_below_power_and_run_for_a_power_user,
        batches::zero_items_and_a_hundred_and_one_are_422_and_every_item_is_validated_first,
        batches::another_users_batch_is_404_to_read_and_to_cancel,
        batches::a_batch_output_echoing_the_system_prompt_is_sanitized_as_a_chat_answer_is,
        batches::a_batch_naming_a_disabled_agent_is_refused_with_tier_required,
        batches::items_beyond_the_request_limit_fail_each_with_rate_limited_and_the_batch_goes_on,
        batches::a_batchs_inputs_and_results_never_reach_the_homes_storage,
        batches::a_batch_whose_results_the_home_lost_is_lost_and_an_unknown_id_is_still_404,
        teams::a_team_checkout_makes_its_buyer_the_owner_who_takes_a_seat,
        teams::an_emailed_invitation_is_accepted_once_and_only_by_the_verified_invited_address,
        teams::members_and_open_invitations_never_exceed_the_seats,
        teams::concurrent_invitations_for_the_last_seat_let_exactly_one_through,
        teams::a_link_invitation_is_the_owners_and_one_of_two_racing_users_gets_it,
        teams::an_expired_invitation_cannot_be_accepted_and_frees_its_seat,
        teams::another_teams_id_and_a_members_role_answer_404_and_403,
        teams::a_member_has_the_team_tier_in_every_gate_until_removed_then_their_own_at_once,
        teams::a_member_may_leave_and_nobody_removes_the_owner,
        teams::a_canceled_team_subscription_returns_every_member_to_their_own_tier,
        teams::a_seat_change_is_one_idempotent_stripe_call_confirmed_by_the_webhook,
        teams::seats_below_the_members_in_use_are_refused_before_any_stripe_call,
        teams::deleting_a_teams_owner_ends_the_team_and_returns_its_members_to_their_own_tier_at_once,
        teams::deleting_a_member_frees_their_seat_and_the_team_goes_on,
        sso::a_team_member_signs_in_through_the_teams_identity_provider_and_every_attack_fails,
        sso::a_team_that_requires_sso_refuses_password_login_at_its_domains,
        sso::only_the_owner_or_an_admin_of_a_live_team_configures_sso,
        sso::an_sso_change_by_an_admin_is_in_the_security_log_of_the_admin_and_the_owner,
        sso::sign_in_starts_are_throttled_per_client_address_before_anything_is_stored,
        sso::the_cron_forgets_expired_sso_sign_ins_and_codes_but_not_live_ones,
        sso::two_sign_ins_racing_for_the_last_seat_make_one_member,
        sso::a_suspended_account_cannot_sign_in_through_sso,
        sso::sso_never_signs_in_to_an_unverified_account_someone_else_may_have_registered,
        sso::an_identity_provider_answering_with_an_oversized_body_fails_the_sign_in_only,
        admin::a_user_who_is_not_an_admin_is_forbidden_every_admin_endpoint,
        admin::an_admin_address_that_was_never_verified_is_not_an_admin,
        admin::a_lookup_shows_tier_seats_creation_last_sign_in_and_sessions_and_is_audited,
        admin::a_suspended_account_is_refused_everywhere_its_socket_closes_and_it_can_be_restored,
        admin::an_admins_token_stops_working_once_the_admin_is_suspended,
        admin::a_comp_reaches_the_gates_until_it_ends_and_is_validated,
        admin::the_review_queue_shows_a_submission_whole_and_each_decision_is_audited,
        admin::payouts_are_listed_per_month_with_the_months_status,
        console::the_console_is_served_at_admin_with_a_strict_content_security_policy,
        console::the_consoles_own_origin_may_call_the_api_and_look_alike_origins_may_not,
        console::an_admin_signs_in_with_two_factor_approves_a_plugin_and_suspends_and_restores_a_user_in_a_browser,
        skeleton::health_reports_ok_and_the_version,
        skeleton::every_response_carries_a_request_id_and_a_sane_one_is_echoed,
        skeleton::unknown_routes_are_a_json_404_envelope,
        skeleton::a_wrong_method_is_a_json_405_with_allow,
        skeleton::malformed_json_is_a_400_envelope,
        skeleton::json_of_the_wrong_shape_is_a_422_naming_the_field,
        skeleton::a_wrong_content_type_is_a_415_envelope,
        skeleton::an_oversized_body_is_a_413_envelope,
        skeleton::cors_preflight_is_allowed_for_the_app_and_localhost_origins,
        skeleton::cors_is_refused_for_other_origins,
        skeleton::a_browser_may_send_the_backup_headers_and_read_the_ones_we_answer_with,
        skeleton::cors_allows_configured_extra_origins,
        skeleton::access_logs_are_json_lines_with_the_request_id,
        skeleton::no_benchmark_or_test_route_is_served,
        skeleton::unknown_http_methods_are_405_not_treated_as_get,
        accounts::registration_posts_a_verification_email_to_the_email_api_with_its_key,
        accounts::an_email_api_answering_503_then_429_is_retried_and_the_message_arrives,
        accounts::an_email_api_that_keeps_failing_is_a_503_and_never_reaches_the_logs,
        accounts::without_an_email_api_the_flows_that_need_mail_answer_503_email_not_configured,
        accounts::a_verification_link_works_once_and_me_shows_the_address_verified,
        accounts::a_verification_link_expires_after_a_day,
        accounts::resending_the_verification_link_stops_at_three_an_hour,
        accounts::an_admin_address_gets_the_admin_role_only_once_verified,
        accounts::a_reset_link_sets_the_password_once_and_ends_every_session_and_socket,
        accounts::reset_links_that_expired_belong_to_another_purpose_or_were_superseded_fail,
        accounts::forgot_password_answers_alike_for_unknown_addresses_in_body_and_time,
        accounts::forgot_password_is_throttled_per_address_asked_for_and_per_client,
        accounts::a_password_change_needs_the_current_one_and_ends_only_the_other_sessions,
        accounts::wrong_current_passwords_stop_at_five_before_any_check,
        accounts::sessions_list_devices_mark_the_current_one_and_end_one_with_its_sockets,
        accounts::another_users_session_is_404_and_keeps_working,
        accounts::a_device_name_longer_than_64_characters_is_refused_by_name,
        accounts::the_security_log_shows_what_happened_without_secrets_or_full_addresses,
        accounts::two_factor_login_needs_a_fresh_code_that_works_once_and_only_for_its_account,
        accounts::recovery_codes_work_once_and_wrong_codes_stop_at_five,
        accounts::disabling_two_factor_needs_the_password_and_a_code,
        deletion::deleting_an_account_stops_it_at_once_and_leaves_nothing_of_it_at_rest,
        deletion::a_deletion_interrupted_by_a_failing_stripe_is_finished_by_the_cron,
        deletion::wrong_passwords_on_deletion_stop_at_five_and_another_users_token_deletes_nothing,
        export::an_export_holds_everything_with_links_only_its_user_can_open,
        export::exports_stop_at_three_an_hour_per_account,
        auth::the_full_register_login_me_refresh_reuse_logout_flow,
        auth::registration_normalises_the_email_and_refuses_duplicates,
        auth::registration_validates_email_and_password_naming_the_field,
        auth::admin_emails_register_as_admins,
        auth::a_wrong_password_and_an_unknown_email_are_the_same_401,
        auth::an_unknown_email_takes_about_as_long_as_a_wrong_password,
        auth::protected_routes_require_a_bearer_token,
        auth::forged_and_broken_tokens_are_rejected,
        auth::racing_refreshes_from_one_device_keep_it_signed_in,
        auth::logout_revokes_one_session_and_logout_all_every_session,
        auth::repeated_failures_throttle_the_account_from_that_address,
        auth::repeated_failures_throttle_the_client_ip,
        auth::failures_from_one_ipv6_64_share_one_client_throttle,
        auth::ws_tickets_are_issued_for_thirty_seconds,
        auth::passwords_and_tokens_never_reach_the_logs,
        billing::checkout_creates_the_right_stripe_session,
        billing::checkout_validates_the_tier_and_seats,
        billing::checkout_reports_stripe_outages_as_503_after_retrying,
        billing::a_signed_checkout_completion_upgrades_the_user,
        billing::bad_or_stale_signatures_are_400_and_change_nothing,
        billing::a_replayed_event_has_no_effect,
        billing::an_out_of_order_update_never_rolls_back,
        billing::a_failed_payment_keeps_the_tier_and_payment_restores_it,
        billing::cancellation_goes_through_stripe_and_deletion_makes_the_user_free,
        billing::unknown_events_are_acknowledged_and_ignored,
        billing::an_unpaid_checkout_grants_nothing_until_its_payment_succeeds,
        billing::a_deleted_subscription_never_comes_back_to_life,
        billing::an_upstream_error_quoting_the_email_never_reaches_the_logs,
        billing::the_billing_portal_opens_for_the_callers_own_customer_only,
        billing::the_billing_portal_is_a_conflict_without_a_customer,
        billing::a_retried_portal_request_keeps_its_idempotency_key,
        billing::a_portal_stripe_refuses_or_garbles_quotes_nothing_it_said,
        housekeeping::the_cron_forgets_expired_tickets_tokens_and_dead_sessions_but_never_a_live_one,
        housekeeping::the_cron_purges_old_tombstones_in_every_home_a_few_homes_per_run,
        housekeeping::the_cron_deletes_r2_leftovers_and_discarded_packages_but_nothing_referenced,
        housekeeping::the_cron_purges_expired_account_tokens_a_batch_at_a_time_and_keeps_live_ones,
        chat::a_task_request_routes_to_the_task_agent_and_returns_a_create_record_action,
        chat::an_agent_hands_off_to_another_enabled_agent_which_answers_with_its_own_actions,
        chat::plan_mode_returns_template_ids_and_run_step_executes_one,
        chat::playbooks_are_filtered_by_the_tier_in_the_database,
        chat::a_playbook_step_renders_its_template_server_side_and_runs_the_agent,
        chat::an_upstream_500_is_retried_then_answered_503,
        chat::an_upstream_429_is_retried_then_answered_503,
        chat::a_model_slower_than_the_deadline_is_a_503_not_a_hang,
        chat::an_answer_echoing_the_system_prompt_comes_back_sanitized,
        chat::chat_input_is_validated_before_the_model_is_called,
        vectors::vectors_are_stored_searched_best_first_and_deleted,
        vectors::a_blob_without_values_is_found_by_the_same_blob_only,
        vectors::one_users_vectors_are_invisible_to_another,
        vectors::a_second_dimension_is_refused_until_the_vectors_are_deleted,
        vectors::bad_items_are_named_and_nothing_is_stored,
        vectors::free_users_have_no_vector_storage,
        vectors::a_full_batch_of_a_hundred_is_stored_replaced_and_deleted,
        limits::tiers_lists_the_matrix_with_prices,
        limits::a_free_user_gets_exactly_20_of_25_concurrent_requests,
        limits::the_limit_follows_an_upgrade_at_once,
        limits::a_team_subscriber_has_200_a_minute_whatever_the_seats,
        limits::authenticated_errors_carry_the_rate_limit_headers_too,
        records::a_free_user_is_refused_cloud_storage_with_tier_required,
        records::records_round_trip_with_etags_and_conditional_requests,
        records::raw_bodies_stream_through_and_are_verified_by_storage,
        records::bad_input_is_refused_and_stores_nothing,
        records::listing_syncs_by_time_and_cursor_with_tombstones,
        records::another_users_record_is_404_for_every_verb,
        records::concurrent_conditional_updates_lose_no_update,
        backups::a_free_user_is_refused_backups_with_tier_required,
        backups::backups_round_trip_with_history_and_conditional_get,
        backups::a_bad_backup_is_refused_and_stores_nothing,
        backups::a_multipart_backup_of_three_parts_round_trips,
        backups::a_multipart_backup_with_a_wrong_whole_checksum_or_aborted_stores_nothing,
        stream::tokens_arrive_as_numbered_frames_spread_over_time_then_a_done_frame_with_the_answer,
        stream::the_socket_opens_with_a_bearer_header_or_a_single_use_ticket_and_refuses_anything_else,
        stream::two_sockets_of_one_user_stream_two_answers_at_the_same_time,
        stream::cancel_ends_the_request_within_a_second_and_aborts_the_upstream_stream,
        stream::closing_the_socket_normally_aborts_the_upstream_stream,
        stream::a_model_stream_that_breaks_midway_ends_in_an_upstream_unavailable_error_frame,
        stream::a_dropped_socket_resumes_its_stream_on_a_new_socket_without_losing_a_token,
        stream::bad_frames_get_error_frames_and_the_socket_stays_open,
        stream::every_request_on_a_socket_spends_one_unit_of_the_rate_limit,
        stream::pings_arrive_every_chat_ping_ms_while_a_slow_stream_runs,
        stream::a_prompt_fragment_split_across_two_tokens_never_reaches_the_client,
        stream::plan_mode_over_the_socket_ends_with_a_done_frame_carrying_the_plan,
        stream::an_echo_of_the_prompts_actually_sent_never_reaches_the_client,
        plugins::a_plugin_goes_from_submission_through_review_to_installs_ratings_and_uninstall,
        plugins::free_and_pro_users_are_refused_the_marketplace_with_tier_required,
        plugins::a_submission_failing_the_checklist_is_refused_by_name_and_stores_nothing,
        plugins::a_new_version_goes_through_review_again_while_the_approved_one_stays_live,
        plugins::a_download_link_works_only_for_its_user_and_plugin_with_its_token_intact,
        plugins::a_paid_install_charges_the_saved_card_once_and_books_the_revenue,
        plugins::a_declined_card_or_a_missing_customer_is_402_and_installs_nothing,
        plugins::a_closed_period_is_paid_out_by_the_cron_exactly_once,
        plugins::an_author_has_at_most_five_pending_versions_and_rejected_packages_are_deleted,
        plugins::an_author_cannot_rate_their_own_plugin,
        plugins::a_paid_install_charges_only_the_price_the_buyer_confirmed,
        plugin_agents::a_plugin_agent_is_routed_to_for_its_user_only_until_uninstalled,
        plugin_agents::a_free_users_three_agents_include_an_installed_plugins_agent,
        contract::the_served_document_is_the_committed_contract,
        contract::the_document_goes_out_gzipped_to_clients_that_accept_it_and_plain_to_the_others,
        contract::schemathesis_finds_no_server_error_and_no_schema_violation,
        pressure::racing_conditional_writers_have_exactly_one_winner_per_round,
        pressure::racing_refreshes_of_one_token_follow_the_grace_rule_and_reuse_revokes_the_family,
        pressure::storage_usage_equals_the_live_records_after_concurrent_writes,
        faults::a_failing_model_gets_clear_chat_errors_in_bounded_time,
        faults::a_truncated_or_garbled_model_stream_ends_in_an_error_frame,
        faults::a_failing_stripe_gets_clear_errors_and_charges_or_installs_nothing,
        faults::clients_vanishing_mid_upload_or_mid_stream_lose_nothing,
        faults::a_wrangler_restart_on_the_same_state_loses_nothing,
        privacy::no_user_content_is_at_rest_in_plaintext_anywhere_after_a_full_session,
        security::another_users_run_step_never_sends_or_returns_my_chat_message,
        security::concurrent_wrong_passwords_run_exactly_as_many_checks_as_the_limit,
        security::failures_from_one_address_never_lock_the_owner_out_from_another,
        security::only_many_addresses_together_reach_the_hourly_account_ceiling,
        security::registrations_from_one_address_stop_at_twenty_an_hour,
        security::echoed_prompts_as_sent_are_removed_from_chat_and_run_step_answers,
        security::logout_all_closes_every_open_socket_and_ends_the_old_tokens,
        security::an_unconditional_delete_racing_updates_always_deletes,
        home::a_second_device_hears_of_a_write_within_a_second,
        home::the_main_routes_cost_one_home_call_and_no_d1_statement,
        home::quotas_hold_at_their_edge_and_open_parts_count_as_backup_bytes,
        client_kit::the_typescript_client_kit_passes_its_node_tests_against_this_worker,
        matrix::providers_lists_the_default_for_free_users_and_every_provider_for_paid_ones,
        matrix::a_free_user_is_refused_a_second_provider_and_unknown_names_before_any_model_call,
        matrix::a_paid_users_chat_runs_on_the_chosen_anthropic_model_with_a_tool_call,
        matrix::a_batch_runs_on_the_chosen_provider_and_model_within_the_tier,
        matrix::the_same_chat_streams_through_each_provider_with_its_tool_call,
        matrix::plans_and_run_step_run_on_the_anthropic_provider,
        matrix::agents_follow_the_tier_and_a_free_user_cannot_enable_a_fourth,
        matrix::the_classifier_lists_exactly_the_enabled_agents_and_routes_only_among_them,
        matrix::a_plan_or_run_step_naming_a_disabled_agent_is_refused_with_tier_required,
    ]
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let tests = all_tests();
    if !cfg!(feature = "e2e") {
        let trials = tests
            .into_iter()
            .map(|(name, _)| Trial::test(name, || Ok(())).with_ignored_flag(true))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let stack = match rt.block_on(harness::Stack::start()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("could not start the stack: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let app = TestApp::new(Arc::clone(&stack));
    let trials = tests
        .into_iter()
        .map(|(name, f)| {
            let app = app.clone();
            let handle = rt.handle().clone();
            Trial::test(name, move || {
                handle.block_on(f(app));
                Ok(())
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed() {
        eprintln!(
            "--- last lines of {} ---\n{}",
            stack.log_path.display(),
            stack.log_tail(6000)
        );
    }
    drop(app);
    matrix::stop(); // stops the providers stack, if a test started it
    drop(stack); // stops wrangler dev
    conclusion.exit_code()
}

//! The storage conformance suite: every storage operation, run against SQLite and (when
//! `PRISM_TEST_POSTGRES_URL` is set) PostgreSQL, each test on a fresh database.

mod analytics;
mod collections;
mod environments;
mod executions;
mod fixtures;
mod ingest_keys;
mod migrations;
mod requests;
mod sessions;
mod spans;
mod store;
mod tokens;
mod trace_search;
mod users;
mod workflows;
mod workspaces;

/// Declares each listed migration test (taking `&TestDatabase`) once per backend, removing the
/// database afterwards even when the test panics.
macro_rules! for_each_database {
    ($suite:path => $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    use $suite as suite;
                    $crate::guarded(prism_testkit::TestDatabase::sqlite(), suite::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    use $suite as suite;
                    if let Some(db) = prism_testkit::TestDatabase::postgres().await {
                        $crate::guarded(db, suite::$name).await;
                    }
                }
            )*
        }
    };
}

/// Runs `test` on `db`, then removes the database, even when the test panics.
async fn guarded(
    db: prism_testkit::TestDatabase,
    test: impl AsyncFnOnce(&prism_testkit::TestDatabase),
) {
    use futures_util::FutureExt;
    let outcome = std::panic::AssertUnwindSafe(test(&db)).catch_unwind().await;
    db.destroy().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

mod store_on {
    prism_testkit::for_each_backend!(crate::store =>
        store_answers_ping_and_reports_its_schema_version,
        closed_store_reports_unavailable,
    );
}

mod migrations_on {
    for_each_database!(crate::migrations =>
        reopening_a_migrated_database_is_harmless,
        concurrent_first_opens_migrate_once,
        unmigrated_database_is_refused_without_migrating,
        newer_schema_is_refused_and_left_untouched,
        changed_migration_is_refused_and_left_untouched,
    );
}

mod users_on {
    prism_testkit::for_each_backend!(crate::users =>
        first_user_becomes_admin,
        later_user_keeps_an_explicit_admin_flag,
        concurrent_first_sign_ups_make_exactly_one_admin,
        duplicate_email_is_a_conflict,
        users_are_found_listed_and_counted,
        user_updates_change_only_their_field,
        missing_user_is_not_found,
        first_user_only_insert_stores_nothing_once_an_account_exists,
        concurrent_first_only_inserts_store_exactly_one,
    );
}

mod workspaces_on {
    prism_testkit::for_each_backend!(crate::workspaces =>
        creating_a_workspace_makes_the_owner_admin,
        workspace_for_a_missing_owner_is_not_created,
        missing_workspace_is_not_found,
        workspaces_for_a_user_are_listed_by_name_with_roles,
        renaming_a_workspace_changes_name_and_time,
        adding_an_existing_member_is_already_member,
        membership_needs_an_existing_user_and_workspace,
        members_are_found_and_listed_by_email,
        member_role_changes_are_stored,
        viewer_role_change_keeps_last_admin,
        last_admin_can_be_neither_demoted_nor_removed,
        last_admin_can_step_down_once_another_admin_exists,
        admins_demoting_each_other_concurrently_leave_one_admin,
        admins_removing_and_demoting_each_other_concurrently_leave_one_admin,
        deleting_a_workspace_removes_everything_in_it,
    );
}

mod collections_on {
    prism_testkit::for_each_backend!(crate::collections =>
        top_level_collections_get_positions_in_insert_order,
        folders_are_numbered_under_their_parent,
        folder_parent_must_exist_in_the_same_workspace,
        collections_are_listed_top_level_first_then_by_parent_and_position,
        renaming_a_collection_keeps_its_place,
        moving_among_siblings_renumbers_positions,
        moving_to_another_parent_renumbers_both_sibling_lists,
        moving_into_itself_or_a_descendant_is_a_cycle,
        moving_under_a_parent_in_another_workspace_is_refused,
        deleting_a_collection_removes_its_folders_and_their_requests,
        collection_with_a_request_used_by_a_workflow_is_in_use,
        concurrent_collection_inserts_get_distinct_positions,
        concurrent_collection_moves_keep_positions_dense,
        duplicating_a_collection_copies_its_subtree_after_the_original,
        duplicating_a_folder_keeps_it_under_its_parent,
        duplicating_a_missing_collection_writes_nothing,
    );
}

mod requests_on {
    prism_testkit::for_each_backend!(crate::requests =>
        rest_requests_round_trip_exactly,
        graphql_request_round_trips_exactly,
        grpc_requests_round_trip_exactly,
        requests_are_positioned_and_listed,
        updating_a_request_can_change_its_protocol,
        moving_a_request_renumbers_both_collections,
        requests_stay_out_of_other_workspaces,
        deleting_a_request_removes_it,
        request_used_by_a_workflow_step_cannot_be_deleted,
        concurrent_request_inserts_get_distinct_positions,
        concurrent_request_moves_keep_positions_dense,
        duplicating_a_request_places_the_copy_after_it,
    );
}

mod environments_on {
    prism_testkit::for_each_backend!(crate::environments =>
        environment_round_trips_with_secret_variables,
        environments_are_listed_by_name_per_workspace,
        environment_needs_an_existing_workspace,
        updating_an_environment_replaces_name_and_variables,
        deleting_an_environment_removes_it,
    );
}

mod executions_on {
    prism_testkit::for_each_backend!(crate::executions =>
        mixed_execution_batch_is_stored_exactly,
        retried_execution_batch_is_not_duplicated,
        execution_batch_larger_than_one_chunk_is_stored,
        failing_execution_batch_stores_nothing,
        executions_are_filtered_by_every_field,
        execution_pages_have_no_overlap_or_gaps,
        execution_details_are_stored_once,
        trace_executions_are_listed_by_start,
        execution_outlives_its_deleted_request,
        missing_execution_is_not_found,
    );
}

mod spans_on {
    prism_testkit::for_each_backend!(crate::spans =>
        span_round_trips_with_every_field,
        every_span_kind_and_status_round_trips,
        retried_span_batch_is_not_duplicated,
        span_batch_larger_than_one_chunk_is_stored,
        span_for_a_missing_workspace_is_refused,
        trace_spans_are_listed_by_start,
        service_spans_are_windowed_and_newest_first,
        trace_workspaces_come_from_executions_and_spans,
        stored_spans_are_announced_once_per_trace,
    );
}

mod trace_search_on {
    prism_testkit::for_each_backend!(crate::trace_search =>
        traces_are_searched_summarized_and_filtered,
    );
}

mod workflows_on {
    prism_testkit::for_each_backend!(crate::workflows =>
        workflows_are_stored_listed_and_updated,
        replacing_steps_renumbers_positions_in_given_order,
        step_request_in_another_workspace_leaves_old_steps,
        deleting_a_workflow_removes_its_steps_and_runs,
        workflow_runs_are_listed_newest_first_and_updated,
        run_steps_are_recorded_and_updated,
        run_steps_outlive_replaced_step_definitions,
        fail_unfinished_runs_fails_only_pending_and_running,
        concurrent_step_replacements_leave_one_complete_list,
    );
}

mod sessions_on {
    prism_testkit::for_each_backend!(crate::sessions =>
        session_is_found_until_it_expires,
        session_needs_a_user_and_a_unique_token,
        touching_a_session_extends_it,
        sessions_are_deleted_singly_by_user_and_by_expiry,
        changing_the_password_ends_every_session_but_the_replacement,
    );
}

mod tokens_on {
    prism_testkit::for_each_backend!(crate::tokens =>
        active_token_is_found_by_hash,
        token_needs_a_user_and_a_unique_hash,
        revoked_token_is_not_active,
        expired_token_is_not_active,
        tokens_are_listed_newest_first_per_user,
        revoking_another_users_token_is_not_found,
        touching_a_token_sets_last_used,
    );
}

mod ingest_keys_on {
    prism_testkit::for_each_backend!(crate::ingest_keys =>
        active_key_is_found_by_hash_until_revoked,
        key_needs_a_workspace_and_a_unique_hash,
        revoking_another_workspaces_key_is_not_found,
        keys_are_listed_newest_first_and_touched,
        keys_go_with_their_workspace,
    );
}

mod analytics_on {
    prism_testkit::for_each_backend!(crate::analytics =>
        execution_analytics_match_the_raw_rows,
        retried_and_failed_batches_count_exactly_once,
        span_analytics_are_per_service_and_count_retries_once,
        recorded_batches_are_stored_whole_and_counted_once,
    );
}

mod analytics_migration_on {
    for_each_database!(crate::analytics =>
        migration_backfills_rollups_of_existing_executions,
    );
}

-- An actor's posts newest first, answered from the index alone: visibility and deleted_at are in
-- it, so the filters cost no table look-up per row. Queries that need it:
--   store.timelines.home_entries (newest posts of each followed account and of the viewer),
--   store.posts.list_actor_posts (profile page /@user, outbox pages),
--   store.posts.count_actor_posts (profile header, outbox collection totalItems: an index-only count),
--   store.posts.list_live_post_ids_of_actor, store.actors.list_all_local_accounts (post counts).
-- bench/RESULTS.md: /@alice on 1M posts p50 105 -> 7 ms, outbox collection (count) 101 -> 3 ms.
CREATE INDEX posts_actor_cover ON posts (actor_id, id, visibility, deleted_at);
-- posts_actor_id (actor_id, id) is a prefix of the index above: every query it served is served
-- as well by posts_actor_cover, so it only cost a second index update per insert.
DROP INDEX posts_actor_id;
-- Statistics for the new index, if the database has any (someone ran ANALYZE): next to other indexes'
-- statistics, an index without any looks to the planner as if actor_id picked ~10 rows, and it then
-- drove the corpus export's RECORD_SELECT from actors through this index with a sort per batch of
-- 1,000 (1 s per batch on 1M records, quadratic overall). Without other statistics this row alone
-- changes nothing measurable. Reads the index once (~1 s per million posts).
ANALYZE posts_actor_cover;

# Repeatable order: when the key is not unique, the whole row breaks ties,
# and no column can take its place -- not even one named p, the alias the
# query reads the relation under.  A no-op UPDATE moves every tuple it
# touches; the ord -> persona_key -> click sequence must not change.  The
# same holds through a view, a materialized view and a foreign table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('order', keys => 1, fresh => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::set_server($base, '{}');

# the key is "id" (no primary key), four personas per id, all with p = 0;
# within an id only the tag tells them apart, and the server answers it
my $csv = $node->basedir . '/dup.csv';
$node->safe_psql('postgres', qq{
	CREATE EXTENSION ctr_dist;
	CREATE EXTENSION file_fdw;
	CREATE TABLE dup (id int, p int, tag text);
	INSERT INTO dup SELECT g / 4, 0, CASE WHEN g % 3 = 0 THEN 'CLICK ' ELSE 'pass ' END || g
	  FROM generate_series(0, 199) g;
	CREATE VIEW dup_view AS SELECT * FROM dup;
	CREATE MATERIALIZED VIEW dup_matview AS SELECT * FROM dup;
	COPY dup TO '$csv' (FORMAT csv);
	CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
	CREATE FOREIGN TABLE dup_foreign (id int, p int, tag text) SERVER files OPTIONS (filename '$csv', format 'csv');
});

# ord:persona_key:click of every row, then how many clicks and NULLs
sub sequence
{
	my ($rel) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(ord || ':' || persona_key || ':' || click, ',' ORDER BY ord)
		       || ' clicks ' || count(*) FILTER (WHERE click = 1) || ' nulls ' || count(*) FILTER (WHERE click IS NULL)
		  FROM ctr_predict('$rel', 50, ad => 'Gym', providers => '{openai}')});
}
my $heap_order = q{SELECT string_agg(tag, ',') FROM dup};

my $before = sequence('dup');
like($before, qr/ clicks 67 nulls 0$/, 'table: every persona answered (67 CLICK rows)');
my $heap = $node->safe_psql('postgres', $heap_order);
$node->safe_psql('postgres', q{UPDATE dup SET tag = tag WHERE tag LIKE 'CLICK%'});
isnt($node->safe_psql('postgres', $heap_order), $heap, 'the no-op UPDATE moved tuples in the heap');
is(sequence('dup'), $before, 'after a no-op UPDATE: the same ord -> persona_key -> click sequence');
is(sequence('dup_view'), $before, 'a view with a column named p: the same sequence');
is(sequence('dup_matview'), $before, 'a materialized view with a column named p: the same sequence');
is(sequence('dup_foreign'), $before, 'a foreign table with a column named p: the same sequence');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();

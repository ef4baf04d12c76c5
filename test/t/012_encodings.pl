# Encodings: whatever the database's encoding, what providers read is UTF-8
# and what comes back is valid text.  Accented persona values, column names,
# ads and platforms in LATIN1, WIN1252 and SQL_ASCII databases give exact
# predictions against the test server, the same prompt bytes (tokens) and
# the same mock answers as the same personas in a UTF-8 database (also in
# a LATIN1 database with a Latin-1 locale, whose isalnum() takes the bytes
# of UTF-8 text for letters); SQL_ASCII
# passes valid UTF-8 and shows any other byte above 0x7F as \xHH; model
# names and failure reasons from providers arrive as printable ASCII.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

# this file is UTF-8 and so is every statement it sends (no "use utf8":
# strings stay bytes, as psql sends and returns them)
$ENV{PGCLIENTENCODING} = 'UTF8';

# a Latin-1 locale, compiled into a directory of our own (the machine need
# not have one); the server finds it through LOCPATH
my $locdir = PostgreSQL::Test::Utils::tempdir();
system("localedef -i de_DE -f ISO-8859-1 $locdir/de_DE.ISO-8859-1 >/dev/null 2>&1");
my $latin_locale = -d "$locdir/de_DE.ISO-8859-1";
$ENV{LOCPATH} = $locdir if $latin_locale;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('encodings', keys => 1, fresh => 1);
CtrDistTest::configure_providers($node, $base);

# Persona data sets.  'latin': text LATIN1 can hold; 'win': plus what only
# WIN1252 has (0x80-0x9F: euro sign, dashes, curly quotes, oe); 'sqlascii':
# 'latin' plus a byte that is not UTF-8, written as $raw (the byte itself
# in the SQL_ASCII database, the four characters \xe9 in its UTF-8 twin).
sub persona_sql
{
	my ($set, $raw) = @_;
	my $extra = $set eq 'win' ? q{ || ' – 20 € “chic” œuvre'} : '';
	my $col = $set eq 'win' ? q{"budget €"} : q{"budget"};
	my $sql = qq{
		CREATE TABLE personas (id int PRIMARY KEY, "âge" int, "métier" text,
		                       "intérêts" text, $col text, tag text);
		INSERT INTO personas
		SELECT g, 18 + g % 60,
		       (ARRAY['infirmière', 'ingénieur', 'boulangère', 'élève'])[1 + g % 4],
		       (ARRAY['café, randonnée', 'théâtre, opéra', 'crème brûlée, ski', 'naïveté, façades'])[1 + g % 3]$extra,
		       (ARRAY['économe', 'dépensier', 'prudent'])[1 + g % 3],
		       CASE WHEN (g * 7919) % 13 < 5 THEN 'CLICK' ELSE 'passé' END
		  FROM generate_series(1, 200) g;
	};
	if ($set eq 'sqlascii')
	{
		# a value, a column name and (in the ad, below) the ad with the byte
		$sql .= qq{
			UPDATE personas SET "intérêts" = "intérêts" || ', caf' || $raw WHERE id % 2 = 0;
			DO \$\$ BEGIN EXECUTE format('ALTER TABLE personas ADD COLUMN %I text', 'note' || $raw); END \$\$;
			DO \$\$ BEGIN EXECUTE format('UPDATE personas SET %I = %L WHERE id %% 3 = 0', 'note' || $raw, 'tr' || $raw || 's bien'); END \$\$;
		};
	}
	return $sql;
}

my %ad = (
	latin => q{'Café offert : l''été à Paris, crème glacée gratuite'},
	win => q{'Café offert – 0 € : l''été à Paris, “crème” gratuite'});
$ad{sqlascii} = sub { my $raw = shift; "'Caf' || $raw || ' offert : l''été à Paris, crème glacée gratuite'" };
my $platform = q{'Télé Loisirs'};

# database => [encoding, data set, the byte as SQL, locale]
my %db = (
	u8_latin => [ 'UTF8', 'latin' ],
	latin1 => [ 'LATIN1', 'latin' ],
	$latin_locale ? (latin1_de => [ 'LATIN1', 'latin', undef, 'de_DE.ISO-8859-1' ]) : (),
	u8_win => [ 'UTF8', 'win' ],
	win1252 => [ 'WIN1252', 'win' ],
	u8_sqlascii => [ 'UTF8', 'sqlascii', q{'\\xe9'} ],
	sqlascii => [ 'SQL_ASCII', 'sqlascii', q{E'\\xe9'} ]);
for my $name (sort keys %db)
{
	my ($enc, $set, $raw, $locale) = @{ $db{$name} };
	$locale //= 'C';
	$node->safe_psql('postgres',
		"CREATE DATABASE $name ENCODING '$enc' LC_COLLATE '$locale' LC_CTYPE '$locale' TEMPLATE template0");
	$node->safe_psql($name, 'CREATE EXTENSION ctr_dist;' . persona_sql($set, $raw));
}
is($node->safe_psql('sqlascii', q{SELECT count(*) FROM personas WHERE "intérêts" LIKE E'%caf\\xe9'}),
	'100', 'SQL_ASCII database: the byte 0xE9 is stored as it is');

sub ad_of
{
	my ($name) = @_;
	my ($enc, $set, $raw) = @{ $db{$name} };
	return ref $ad{$set} ? $ad{$set}->($raw) : $ad{$set};
}

# one call: ord:key:click of every row, "rows|exact|nulls", and the call's tokens_in
sub call
{
	my ($name, $providers) = @_;
	my $args = "50, ad => " . ad_of($name) . ", platform => $platform, providers => '{$providers}'";
	my ($ret, $out, $err) = $node->psql($name, qq{
		CREATE TEMP TABLE r AS SELECT * FROM ctr_predict('personas', $args);
		SELECT string_agg(ord || ':' || persona_key || ':' || coalesce(click::text, 'NULL'), ',' ORDER BY ord) FROM r;
		SELECT count(*) || '|' || count(*) FILTER (WHERE r.click = (p.tag = 'CLICK')::int)
		       || '|' || count(*) FILTER (WHERE r.click IS NULL)
		  FROM r JOIN personas p ON p.id::text = r.persona_key;
		SELECT coalesce(sum(tokens_in), 0) FROM ctr_dist.last_call_stats();
	});
	my @lines = split /\n/, $out;
	return { ret => $ret, err => $err, seq => $lines[0] // '', exact => $lines[1] // '', tokens => $lines[2] // '' };
}

SKIP:
{
	skip 'no Latin-1 locale could be compiled (localedef)', 1 unless $latin_locale;
	is(call('latin1_de', 'mock')->{seq}, call('u8_latin', 'mock')->{seq},
		'mock in a LATIN1 database with a Latin-1 locale: the same answers as in UTF-8');
}

CtrDistTest::set_server($base, '{}');
for my $pair ([ 'u8_latin', 'latin1' ], [ 'u8_win', 'win1252' ], [ 'u8_sqlascii', 'sqlascii' ])
{
	my ($u8, $other) = @$pair;

	# the mock reads the same text: the same answers, persona by persona
	my $m8 = call($u8, 'mock');
	my $mo = call($other, 'mock');
	like($m8->{seq}, qr/:1,.*:0,/, "mock in $u8: some clicks and some not");
	is($mo->{seq}, $m8->{seq}, "mock in $other: the same answers as in $u8, persona by persona");

	for my $p (qw(openai deepseek gemini))
	{
		my $r8 = call($u8, $p);
		my $ro = call($other, $p);
		is($ro->{exact}, '200|200|0', "$p in $other: every prediction exact");
		unlike($ro->{err}, qr/WARNING/, "$p in $other: no warning");
		# the server counts tokens as UTF-8 bytes / 4: the same prompt, byte for byte
		is($ro->{tokens}, $r8->{tokens}, "$p in $other: the prompt is the same as in $u8 ($r8->{tokens} tokens)");
	}
}
is_deeply(CtrDistTest::stats($base)->{violations}, [], 'the server saw no invalid request');

# a character UTF-8 does not have is PostgreSQL's own error
my ($ret, $out, $err) = $node->psql('win1252', qq{
	SET client_encoding = 'WIN1252';
	INSERT INTO personas (id, tag) VALUES (0, 'x\x81y');
	SELECT count(*) FROM ctr_predict('personas', 50, ad => 'Gym', providers => '{mock}');
});
like($err, qr/ERROR:  character with byte sequence 0x81 in encoding "WIN1252" has no equivalent in encoding "UTF8"/,
	'WIN1252 byte 0x81 (undefined): PostgreSQL\'s error for an untranslatable character');
$node->safe_psql('win1252', 'DELETE FROM personas WHERE id = 0');

# the way back: a model name and a failure reason that are not ASCII reach
# rows and messages as printable ASCII ('?' for each other byte), valid in
# a LATIN1 database (as UTF-8 bytes they would read "Ã©")
CtrDistTest::set_server($base, '{"model_snapshots": {"gpt-4o-mini": "gpt-4o-mini-\u00e9t\u00e9"}}');
is($node->safe_psql('latin1', "SELECT DISTINCT model FROM ctr_predict('personas', 50, ad => 'Gym', providers => '{openai}')"),
	'gpt-4o-mini-??t??', 'a model name that is not ASCII: printable ASCII in the model column');
CtrDistTest::set_server($base, '{"faults": [{"kind": "http_500", "provider": "openai", "params": {"body": '
	  . '"{\"error\": {\"message\": \"Erreur interne, r\u00e9essayez.\", \"type\": \"server_error\"}}"}}]}');
($ret, $out, $err) = $node->psql('latin1',
	"SET ctr_dist.max_retries = 0; SELECT count(*) FROM ctr_predict('personas', 50, ad => 'Gym', providers => '{openai}')");
like($err, qr/the last error was openai: HTTP 500: Erreur interne, r\?\?essayez\.$/m,
	'a failure reason that is not ASCII: printable ASCII in the message');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();

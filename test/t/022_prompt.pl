# What the model reads, byte for byte: the test server logs each request's
# whole user turn as it decoded it from the provider's JSON, and every persona
# line must be exactly the README's rendering of the row (values escaped so a
# persona is one line and a value one field; empty values left out; trailing
# missing fields dropped; the shorter of the header and the labelled form).
# The cases put each special byte at every position around the 16-byte
# blocks the escapers test at a time, next to multibyte characters, and in a
# 10 kB value, so the prompt escaper and the JSON writer are both checked.
use strict;
use warnings;
use Encode qw(encode decode);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $log = "$dir/server.log";
my ($server, $base) = CtrDistTest::start_provider_server(log => $log, log_prompts => 1);
my $node = CtrDistTest::new_node('prompt', keys => 1);
CtrDistTest::configure_providers($node, $base);
$node->safe_psql('postgres', q{
	CREATE DATABASE p ENCODING 'UTF8' TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'});
$node->safe_psql('p', 'CREATE EXTENSION ctr_dist');

# the README's escaping, on UTF-8 bytes
sub esc
{
	my ($s, $name) = @_;
	my $o = '';
	for my $ch (split //, $s)
	{
		my $b = ord($ch);
		if ($ch eq '\\' || $ch eq '|' || $ch eq ';' || ($name && $ch eq ':')) { $o .= "\\$ch"; }
		elsif ($ch eq "\n") { $o .= '\n'; }
		elsif ($ch eq "\r") { $o .= '\r'; }
		elsif ($ch eq "\t") { $o .= '\t'; }
		elsif ($b < 0x20 || $b == 0x7f) { $o .= sprintf('\x%02x', $b); }
		else { $o .= $ch; }
	}
	return $o;
}

# the cases: bytes (UTF-8), undef for NULL
my @specials = ('|', ';', '\\', "\n", "\t", "\r", "\x01", "\x1f", "\x7f", '"', "\x08", "\x0c", ':', '/');
my @values;
my $k = 0;
for my $len (1 .. 40)
{
	for my $pos (0, 14, 15, 16, 17, 31, 32, $len - 1)
	{
		next if $pos >= $len;
		my $v = 'a' x $len;
		substr($v, $pos, 1) = $specials[$k++ % @specials];
		push @values, $v;
	}
}
push @values, 'x' x 15 . '|' . "\x{c3}\x{a9}" x 8 . ';' . "\x{f0}\x{9f}\x{98}\x{80}" . "\\";
push @values, "\x{e2}\x{82}\x{ac}|" x 20;
push @values, join('', map { ('b' x ($_ % 37)) . $specials[$_ % @specials] } 1 .. 500);	# ~10 kB
push @values, 'plain ascii, nothing to escape at all, longer than sixteen bytes';
push @values, '"' x 3000;	# twice its size in JSON: the JSON writer's buffer grows
push @values, '';			# empty: left out like NULL
push @values, undef;

my $n = @values;
my $sql = "CREATE TABLE people (id int PRIMARY KEY, \"we:ird|name\" text, n int, f float8, d date, v text);\n"
  . "INSERT INTO people VALUES\n";
my @rows;
for my $i (0 .. $#values)
{
	my $id = $i + 1;
	my $v = defined $values[$i]
	  ? "convert_from(decode('" . unpack('H*', $values[$i]) . "', 'hex'), 'UTF8')" : 'NULL';
	push @rows, "($id, 'x', $id * 3, $id / 4.0, date '2026-01-01' + $id, $v)";
}
$sql .= join(",\n", @rows) . ";\n";
$node->safe_psql('p', $sql);

# the plain columns as PostgreSQL prints them
my %plain;
for my $line (split /\n/, $node->safe_psql('p', q{SELECT id, n::text, f::text, d::text FROM people}))
{
	my ($id, @rest) = split /\|/, $line;
	$plain{$id} = [@rest];
}

my @want = ("Personas: $n", 'fields: ' . join('|', esc('we:ird|name', 1), 'n', 'f', 'd', 'v'));
for my $i (0 .. $#values)
{
	my @f = ('x', @{ $plain{ $i + 1 } });
	push @f, esc($values[$i], 0) if defined $values[$i] && $values[$i] ne '';
	push @want, '[' . ($i + 1) . '] ' . join('|', @f);
}

# the user turns the server decoded since the last look
my $seen = 0;
sub prompts
{
	my @p;
	open(my $fh, '<', $log) or die "no server log";
	my @lines = <$fh>;
	close($fh);
	for my $line (@lines[$seen .. $#lines])
	{
		my $e = JSON::PP->new->decode($line);
		push @p, encode('UTF-8', $e->{prompt}) if defined $e->{prompt};
	}
	$seen = @lines;
	return @p;
}

for my $provider (qw(openai deepseek gemini))
{
	is($node->safe_psql('p', qq{SELECT count(*) FILTER (WHERE click IS NOT NULL)
		FROM ctr_predict('people', 500, ad => 'Shoes', providers => '{$provider}')}),
		$n, "$provider: every persona answered");
	my @p = prompts();
	is(scalar(@p), 1, "$provider: one request");
	my @got = grep { /^(Personas|fields|\[\d+\])/ } split /\n/, $p[0] // '';
	is(scalar(@got), scalar(@want), "$provider: one line per persona");
	my @bad = grep { ($got[$_] // '') ne $want[$_] } 0 .. $#want;
	is(scalar(@bad), 0, "$provider: every line exactly as the README renders it")
	  or diag("first difference:\n got: " . ($got[ $bad[0] ] // '(none)') . "\nwant: $want[ $bad[0] ]");
}

# float4 and float8 texts are remembered per column of a call (personas.c):
# values that repeat, that share one of the 256 slots (300 distinct values a
# column in 1,000 rows), signed zeros, NaN, infinities and extremes must
# still read exactly as PostgreSQL prints them, and a call with another
# extra_float_digits prints anew
$node->safe_psql('p', q{
	CREATE TABLE floats (id int PRIMARY KEY, r real, d float8);
	INSERT INTO floats SELECT g, ((g * 7919) % 300) / 7.0, ((g * 104729) % 300) / 3.0
	  FROM generate_series(1, 993) g;
	INSERT INTO floats VALUES (994, '-0', '-0'), (995, '0', '0'), (996, 'NaN', 'NaN'),
	  (997, 'Infinity', '-Infinity'), (998, '1.4e-45', '4.9e-324'),
	  (999, '3.4028235e38', '1.7976931348623157e308'), (1000, '-0', '-0')});
for my $digits (1, 0)
{
	my @want = split /\n/, $node->safe_psql('p',
		"SET extra_float_digits = $digits; SELECT '[' || id || '] ' || r::text || '|' || d::text FROM floats ORDER BY id");
	$node->safe_psql('p', "SET extra_float_digits = $digits; "
		  . "SELECT count(*) FROM ctr_predict('floats', 1000, ad => 'Shoes', providers => '{openai}')");
	my @p = prompts();
	my @got = grep { /^\[\d+\] / } split /\n/, $p[0] // '';
	is(scalar(@p) . ' ' . scalar(@got), '1 1000', "floats, extra_float_digits $digits: one request, every row");
	my @bad = grep { ($got[$_] // '') ne $want[$_] } 0 .. $#want;
	is(scalar(@bad), 0, "floats, extra_float_digits $digits: every value as PostgreSQL prints it")
	  or diag("first difference:\n got: " . ($got[ $bad[0] ] // '(none)') . "\nwant: $want[ $bad[0] ]");
}

# mostly missing values: the labelled form, names escaped too
$node->safe_psql('p', q{
	CREATE TABLE sparse (id int PRIMARY KEY, a text, "b:c" text, d text, e text, f text, g text);
	INSERT INTO sparse (id, "b:c") VALUES (1, 'one;two');
	INSERT INTO sparse (id, g) VALUES (2, 'last|field');});
$node->safe_psql('p', q{SELECT count(*) FROM ctr_predict('sparse', 10, ad => 'Shoes', providers => '{openai}')});
my @p = prompts();
my @got = grep { /^\[\d+\]/ } split /\n/, $p[0] // '';
is_deeply(\@got, ['[1] b\:c: one\;two', '[2] g: last\|field'], 'sparse rows: "name: value" lines');

CtrDistTest::stop_provider_server($server);
$node->stop;
done_testing();

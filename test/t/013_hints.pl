# Retry hints and failure reasons.  A server's wait hint is honoured from
# every provider and on every body -- empty, not JSON, JSON -- in the
# README's order: retry-after-ms, else retry-after (seconds or an HTTP
# date), else Gemini's RetryInfo or OpenAI's "try again in".  The wait is
# measured at the test server, between the refused request and the retry,
# from its request log.  Failure reasons have no empty field and never a
# doubled full stop in the messages that quote them.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my $log = PostgreSQL::Test::Utils::tempdir() . '/requests.log';
my ($server, $base) = CtrDistTest::start_provider_server(log => $log);
my $node = CtrDistTest::new_node('hints', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'small', 20);

# One batch on one provider whose first request gets the fault; returns
# the seconds between that request's answer and the retry's, at the server
sub gap
{
	my ($provider, $kind, $params) = @_;
	my $fault = { kind => $kind, provider => $provider, first => 1, params => $params };
	CtrDistTest::set_server($base, encode_json({ faults => [$fault] }));
	my $from = -s $log // 0;
	my ($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "50, ad => 'Gym', providers => '{$provider}'");
	is($out, '20|20|0|0', "$provider $kind: answered after the retry");
	open(my $fh, '<', $log) or die "no request log: $!";
	seek($fh, $from, 0);
	my @t = map { decode_json($_)->{t} } grep { /"provider":"$provider"/ } <$fh>;
	close($fh);
	is(scalar @t, 2, "$provider $kind: one request refused, one retry");
	return @t == 2 ? $t[1] - $t[0] : -1;
}

# what a wait must be: at least the hint, and not a backoff far beyond it
sub waited
{
	my ($gap, $min, $max, $what) = @_;
	ok($gap >= $min && $gap < $max, sprintf('%s: waited %.2f s (want %.2f .. %.2f)', $what, $gap, $min, $max));
}

# headers on bodies that are empty or not JSON: every provider, 429 and 503
# (without the hint the first backoff is 0.375-0.5 s)
waited(gap('openai', 'rate_limit', { signal => 'retry_after_ms', seconds => 1.5, body => '' }),
	1.5, 2.5, 'openai 429, empty body, retry-after-ms 1500');
waited(gap('openai', 'rate_limit', { signal => 'retry_after', seconds => 2, body => "Too Many Requests\n" }),
	2.0, 3.0, 'openai 429, text body, retry-after 2');
waited(gap('openai', 'http_503', { signal => 'retry_after_ms', seconds => 1.5, body => '' }),
	1.5, 2.5, 'openai 503, empty body, retry-after-ms 1500');
waited(gap('deepseek', 'http_503', { signal => 'retry_after_date', seconds => 3, body => '' }),
	1.9, 4.0, 'deepseek 503, empty body, retry-after as an HTTP date 3 s ahead');
waited(gap('deepseek', 'rate_limit', { signal => 'retry_after_ms', seconds => 1.2, body => '<html><body>429</body></html>' }),
	1.2, 2.2, 'deepseek 429, HTML body, retry-after-ms 1200');

# Gemini: headers too, on its JSON errors and on others
waited(gap('gemini', 'rate_limit', { signal => 'retry_after', seconds => 2 }),
	2.0, 3.0, 'gemini 429 RESOURCE_EXHAUSTED, retry-after 2');
waited(gap('gemini', 'http_503', { signal => 'retry_after_ms', seconds => 1.5 }),
	1.5, 2.5, 'gemini 503 UNAVAILABLE, retry-after-ms 1500');
waited(gap('gemini', 'rate_limit', { signal => 'retry_after', seconds => 2, body => '' }),
	2.0, 3.0, 'gemini 429, empty body, retry-after 2');

# the order: retry-after-ms, then retry-after, then the body's hint
waited(gap('openai', 'rate_limit', { signal => 'retry_after_ms', seconds => 1.2, headers => { 'retry-after' => '5' } }),
	1.2, 2.2, 'openai: retry-after-ms 1200 before retry-after 5');
waited(gap('openai', 'rate_limit', { signal => 'try_again_text', seconds => 0.2, headers => { 'retry-after' => '2' } }),
	2.0, 3.0, 'openai: retry-after 2 before "try again in 0.200s"');
waited(gap('gemini', 'rate_limit', { signal => 'retry_info', seconds => 0.2, headers => { 'retry-after-ms' => '1500' } }),
	1.5, 2.5, 'gemini: retry-after-ms 1500 before RetryInfo 0.2s');
waited(gap('gemini', 'rate_limit', { signal => 'retry_info', seconds => 1.5 }),
	1.5, 2.5, 'gemini: RetryInfo 1.5s alone');
waited(gap('openai', 'rate_limit', { signal => 'try_again_text', seconds => 1.5 }),
	1.5, 2.5, 'openai: "try again in 1.500s" alone');

# failure reasons: Gemini's without a status has no empty field, and a
# reason's own full stop is not doubled by the message around it
sub all_fail
{
	my ($provider, $kind, $params) = @_;
	CtrDistTest::set_server($base,
		encode_json({ faults => [ { kind => $kind, provider => $provider, params => $params } ] }));
	my ($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "50, ad => 'Gym', providers => '{$provider}'",
		pre => 'SET ctr_dist.max_retries = 0;');
	is($out, '20|0|20|0', "$provider $kind: every row NULL");
	return $err;
}
my $err = all_fail('gemini', 'bad_request_400',
	{ body => '{"error": {"code": 400, "message": "Request contains an invalid argument."}}' });
like($err, qr/provider "gemini" rejected 1 request: HTTP 400: Request contains an invalid argument$/m,
	'gemini 400 without a status: "HTTP 400: message", no empty field, no full stop');
like($err, qr/the last error was gemini: HTTP 400: Request contains an invalid argument\.$/m,
	'gemini 400: the message ends in one full stop');
$err = all_fail('gemini', 'http_503', {});
like($err, qr/the last error was gemini: HTTP 503 UNAVAILABLE: The model is overloaded\. Please try again later\.$/m,
	'gemini 503 "... try again later.": one full stop at the end of the message');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();

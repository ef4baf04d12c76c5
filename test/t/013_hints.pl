# Failure reasons: Gemini's without a status has no empty field, and a
# reason's own full stop is not doubled by the messages that quote it.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('hints', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'small', 20);

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
like($err, qr/rejected the request for batch 1: HTTP 400: Request contains an invalid argument$/m,
	'gemini 400 without a status: "HTTP 400: message", no empty field, no full stop');
like($err, qr/the last error was gemini: HTTP 400: Request contains an invalid argument\.$/m,
	'gemini 400: the message ends in one full stop');
$err = all_fail('gemini', 'http_503', {});
like($err, qr/the last error was gemini: HTTP 503 UNAVAILABLE: The model is overloaded\. Please try again later\.$/m,
	'gemini 503 "... try again later.": one full stop at the end of the message');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();

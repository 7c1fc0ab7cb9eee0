# cache_app.pl - PSGI app for the integration tests: /OP?k=KEY&v=VALUE&c=CACHE
# runs uwsgi::cache_OP and answers "R:<result>" or "UNDEF".
use strict;
use warnings;

my %ops = (
    '/set'    => sub { uwsgi::cache_set($_[0]{k}, $_[0]{v}, 0, $_[0]{c}) },
    '/get'    => sub { uwsgi::cache_get($_[0]{k}, $_[0]{c}) },
    '/exists' => sub { uwsgi::cache_exists($_[0]{k}, $_[0]{c}) },
    '/del'    => sub { uwsgi::cache_del($_[0]{k}, $_[0]{c}) },
    '/clear'  => sub { uwsgi::cache_clear($_[0]{c}) },
);

my $app = sub {
    my $env = shift;
    my %q = map { split /=/, $_, 2 } split /&/, ($env->{QUERY_STRING} // '');
    my $op = $ops{$env->{PATH_INFO}};
    my $r = $op ? $op->(\%q) : undef;
    my $out = defined $r ? "R:$r" : 'UNDEF';
    return [200, ['Content-Type' => 'text/plain'], [$out]];
};

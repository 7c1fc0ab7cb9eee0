# rpc_app.pl - PSGI app for the integration tests: /call?f=FUNC&a=ARG&a=ARG...
# runs uwsgi::call(FUNC, ARG...) (the ucache_* RPC functions) and answers
# "R:<reply>" or "UNDEF".  Arguments are %XX-decoded.
use strict;
use warnings;

sub unescape { my $s = shift; $s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge; return $s; }

my $app = sub {
    my $env = shift;
    my ($f, @args);
    for my $pair (split /&/, ($env->{QUERY_STRING} // '')) {
        my ($k, $v) = split /=/, $pair, 2;
        $v = unescape($v // '');
        if ($k eq 'f') { $f = $v } elsif ($k eq 'a') { push @args, $v }
    }
    my $r = defined $f ? uwsgi::call($f, @args) : undef;
    my $out = defined $r ? "R:$r" : 'UNDEF';
    return [200, ['Content-Type' => 'application/octet-stream'], [$out]];
};

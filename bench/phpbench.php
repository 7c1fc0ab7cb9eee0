<?php
/*
 * bench/phpbench.php - the PHP loop of `make bench` (section "php").
 *
 * Served by uwsgi's PHP plugin (--plugin php --http-socket ... 
 * --http-socket-modifier1 14 --php-docroot bench); bench/run.py sends the
 * requests and reads one JSON object back from each:
 *
 *   /phpbench.php?op=fill&n=N          store N keys in APCu (apcu_store)
 *                                      and in the uwsgi cache
 *                                      (uwsgi_cache_update), then read each
 *                                      back from both and count mismatches
 *   /phpbench.php?op=loop&n=N&dur=S&start=T[&phase_ms=P]
 *                                      wait until Unix time T (so that two
 *                                      workers start together), then loop for
 *                                      S seconds in rounds of three timed
 *                                      phases of P ms (25) each: the loop
 *                                      alone (noop, no call), apcu_fetch,
 *                                      uwsgi_cache_get (the last two swap
 *                                      places every round).  All three see
 *                                      the same drift of the machine's speed
 *                                      (this host's varies by 2x from one
 *                                      second to the next), and a phase is
 *                                      long enough that what one function
 *                                      leaves in the CPU caches does not tax
 *                                      the next (interleaving batches of 256
 *                                      calls did: stock's gets halved the
 *                                      APCu calls that followed them)
 *
 * Keys: "k" + 15 digits (16 bytes); values: 100 bytes naming the key.  The
 * loop walks the keys in a fixed shuffled order (no random number drawn per
 * op; each function keeps its own place in it) and counts misses and values
 * that are not 100 bytes (any is an error for the runner).  It reports ops
 * and ns per function, wall and CPU ns (getrusage) of the whole loop, and
 * the request memory the loop left allocated and the page faults it took,
 * per uwsgi_cache_get call (they are all its own): the PHP plugin's
 * uwsgi_cache_get keeps an estrndup() copy of every value until the
 * request ends, so memory_limit must be -1 for a long loop.
 */
header('Content-Type: application/json');

function ucb_key($i) { return sprintf('k%015d', $i); }
function ucb_value($k) { return substr(str_repeat('v' . $k . '.', 7), 0, 100); }

$op = $_GET['op'] ?? '';
$n = (int)($_GET['n'] ?? 10000);
$out = ['pid' => getmypid(), 'op' => $op, 'n' => $n];

if ($op === 'fill') {
	$errors = 0;
	for ($i = 0; $i < $n; $i++) {
		$k = ucb_key($i);
		$v = ucb_value($k);
		if (!apcu_store($k, $v))
			$errors++;
		if (!uwsgi_cache_update($k, $v))
			$errors++;
	}
	$bad = 0;
	for ($i = 0; $i < $n; $i++) {
		$k = ucb_key($i);
		$v = ucb_value($k);
		if (apcu_fetch($k) !== $v)
			$bad++;
		if (uwsgi_cache_get($k) !== $v)
			$bad++;
	}
	$out += ['errors' => $errors, 'bad' => $bad, 'apcu' => function_exists('apcu_enabled') && apcu_enabled()];
} elseif ($op === 'loop') {
	$dur = (float)($_GET['dur'] ?? 1.0);
	$start = (float)($_GET['start'] ?? 0);
	$ks = [];
	for ($i = 0; $i < $n; $i++)
		$ks[] = ucb_key($i);
	mt_srand(12345);
	shuffle($ks);
	$phase = (int)(($_GET['phase_ms'] ?? 25) * 1e6);
	$ns = ['noop' => 0, 'apcu' => 0, 'uwsgi' => 0];
	$ops = ['noop' => 0, 'apcu' => 0, 'uwsgi' => 0];
	$miss = ['noop' => 0, 'apcu' => 0, 'uwsgi' => 0];
	$bad = ['noop' => 0, 'apcu' => 0, 'uwsgi' => 0];
	$at = ['noop' => 0, 'apcu' => 0, 'uwsgi' => 0];  /* each one's place in the key order */
	$rounds = 0;
	/* One timed loop per function, made from one template so that each
	 * calls its function directly (a variable call or a dispatch per op
	 * would weigh on both sides and pull the ratio towards 1). */
	$template = 'return function ($ks, $n, $j, $end) {
		$n_ops = $miss = $bad = 0;
		do {
			for ($b = 0; $b < 256; $b++) {
				$v = CALL;
				if ($v === MISS)
					$miss++;
				elseif (strlen($v) !== LEN)
					$bad++;
				if (++$j === $n)
					$j = 0;
			}
			$n_ops += 256;
		} while (($tb = hrtime(true)) < $end);
		return [$n_ops, $j, $tb, $miss, $bad];
	};';
	$loops = [];
	foreach (['noop' => ['$ks[$j]', 'null', 16], 'apcu' => ['apcu_fetch($ks[$j])', 'false', 100],
		  'uwsgi' => ['uwsgi_cache_get($ks[$j])', 'null', 100]] as $be => [$call, $missv, $len])
		$loops[$be] = eval(strtr($template, ['CALL' => $call, 'MISS' => $missv, 'LEN' => $len]));
	while (microtime(true) < $start)
		usleep(500);
	$mem0 = memory_get_usage();
	$ru0 = getrusage();
	$t0 = hrtime(true);
	$deadline = $t0 + (int)($dur * 1e9);
	do {
		/* one round: a phase of each; apcu and uwsgi alternate which goes first */
		foreach (($rounds & 1) ? ['noop', 'uwsgi', 'apcu'] : ['noop', 'apcu', 'uwsgi'] as $be) {
			$ta = hrtime(true);
			[$n_ops, $j, $tb, $m, $x] = $loops[$be]($ks, $n, $at[$be], $ta + $phase);
			$miss[$be] += $m;
			$bad[$be] += $x;
			$ns[$be] += $tb - $ta;
			$ops[$be] += $n_ops;
			$at[$be] = $j;
		}
		$rounds++;
	} while ($tb < $deadline);
	$t1 = hrtime(true);
	$ru1 = getrusage();
	$mem1 = memory_get_usage();
	$cpu = ($ru1['ru_utime.tv_sec'] - $ru0['ru_utime.tv_sec'] + $ru1['ru_stime.tv_sec'] - $ru0['ru_stime.tv_sec']) * 1e9
		+ ($ru1['ru_utime.tv_usec'] - $ru0['ru_utime.tv_usec'] + $ru1['ru_stime.tv_usec'] - $ru0['ru_stime.tv_usec']) * 1e3;
	$u = $ops['uwsgi'];
	$out += ['ops' => $ops, 'ns' => $ns, 'rounds' => $rounds, 'phase_ms' => $phase / 1e6,
		'wall_ns' => $t1 - $t0, 'cpu_ns' => $cpu, 'misses' => $miss, 'bad' => $bad,
		'late_ms' => ($start ? (microtime(true) - $start) * 1e3 - ($t1 - $t0) / 1e6 : 0),
		'mem_per_op' => $u ? ($mem1 - $mem0) / $u : 0,
		'minflt_per_op' => $u ? ($ru1['ru_minflt'] - $ru0['ru_minflt']) / $u : 0];
} else {
	http_response_code(400);
	$out['error'] = 'unknown op';
}
echo json_encode($out);

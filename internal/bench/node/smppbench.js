#!/usr/bin/env node
// The npm "smpp" package's side of smppbench (internal/bench), run with NODE_PATH pointing at a
// node_modules that holds it (gateway/testdata/node's).
//
//   smppbench.js server                 an SMSC on 127.0.0.1 (free port): binds anyone, answers every
//                                       submit_sm ESME_ROK with an id; prints "listening PORT"
//   smppbench.js client --port N --system-id ID --password P --count N --window W --duration-ms D
//                                       binds as transmitter, keeps W submit_sm in flight until N are
//                                       sent or D ms passed, awaits the answers, unbinds and prints
//                                       "result {json}": sent, acked, errors, first_ms (epoch ms of the
//                                       first submit_sm), seconds (first submit to last answer), p50_ms, p99_ms
'use strict';

const { parseArgs } = require('node:util');
const smpp = require('smpp');

const mode = process.argv[2];
const { values: opt } = parseArgs({
	args: process.argv.slice(3),
	options: {
		port: { type: 'string', default: '0' },
		'system-id': { type: 'string', default: 'bench' },
		password: { type: 'string', default: '' },
		count: { type: 'string', default: '1000' },
		window: { type: 'string', default: '10' },
		'duration-ms': { type: 'string', default: '10000' },
	},
});

if (mode === 'server') {
	let next = 0;
	const server = smpp.createServer((session) => {
		session.on('error', () => {});
		const onBind = (pdu) => session.send(pdu.response({ system_id: 'nodesmsc' }));
		session.on('bind_transceiver', onBind);
		session.on('bind_transmitter', onBind);
		session.on('bind_receiver', onBind);
		session.on('submit_sm', (pdu) => session.send(pdu.response({ message_id: (++next).toString(16) })));
		session.on('enquire_link', (pdu) => session.send(pdu.response()));
		session.on('unbind', (pdu) => {
			session.send(pdu.response());
			session.close();
		});
	});
	server.listen(0, '127.0.0.1', () => process.stdout.write('listening ' + server.address().port + '\n'));
	process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'client') {
	const count = Number(opt.count);
	const window = Number(opt.window);
	const deadline = Date.now() + Number(opt['duration-ms']);
	const lat = [];
	let sent = 0, acked = 0, errors = 0, answered = 0, inflight = 0;
	let first = 0n, last = 0n, firstMs = 0;
	const session = smpp.connect({ host: '127.0.0.1', port: Number(opt.port) });
	session.on('error', (e) => process.stderr.write('client error: ' + e + '\n'));
	const report = () => {
		lat.sort((a, b) => a - b);
		const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
		process.stdout.write('result ' + JSON.stringify({
			sent, acked, errors, first_ms: firstMs,
			seconds: Number(last - first) / 1e9, p50_ms: q(0.5), p99_ms: q(0.99),
		}) + '\n', () => process.exit(0));
	};
	const finish = () => session.unbind({}, () => { session.close(); report(); });
	const pump = () => {
		while (inflight < window && sent < count && Date.now() < deadline) {
			const t0 = process.hrtime.bigint();
			if (sent === 0) { first = t0; firstMs = Date.now(); }
			sent++;
			inflight++;
			session.submit_sm({
				source_addr: 'npmbench', destination_addr: '4670' + String(10000000 + (sent % 90000000)),
				registered_delivery: 0, data_coding: 0, short_message: 'smppbench npm client message',
			}, (resp) => {
				const t1 = process.hrtime.bigint();
				last = t1;
				inflight--;
				answered++;
				lat.push(Number(t1 - t0) / 1e6);
				if (resp.command_status === 0) acked++; else errors++;
				if (answered === sent && (sent >= count || Date.now() >= deadline)) finish();
				else pump();
			});
		}
	};
	session.on('connect', () => {
		session.bind_transmitter({ system_id: opt['system-id'], password: opt.password }, (pdu) => {
			if (pdu.command_status !== 0) {
				process.stderr.write('bind refused: ' + pdu.command_status + '\n');
				process.exit(1);
			}
			pump();
		});
	});
} else {
	process.stderr.write('usage: smppbench.js server | client --port N ...\n');
	process.exit(2);
}

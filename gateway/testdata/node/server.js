#!/usr/bin/env node
// An SMSC built on the npm "smpp" package, run by gateway/interop_node_test.go as the upstream of
// smppgw's ESME role (gateway.Client). It listens on --host:--port (port 0 picks a free one), accepts
// binds with --system-id/--password, answers each submit_sm with a message id ("node-1", "node-2",
// ...), and sends the bound ESME deliver_sm: one MO (to --mo-dest) after the first bind, and a delivery
// receipt for every submit_sm that asked for one (registered_delivery bit 0).
//
// stdout carries JSON lines: first {"event":"listening","port":N}, then, once --expect submit_sm have
// been answered and every deliver_sm sent has its deliver_sm_resp, {"event":"summary",...}. The
// process then stays up to answer the ESME's unbind and exits when the last session closes, or at
// --timeout-ms (summary printed with timed_out true, exit code 1).
'use strict';

const { parseArgs } = require('node:util');
const smpp = require('smpp');

const { values: opt } = parseArgs({
	options: {
		host: { type: 'string', default: '127.0.0.1' },
		port: { type: 'string', default: '0' },
		'system-id': { type: 'string' },
		password: { type: 'string', default: '' },
		expect: { type: 'string', default: '1' },
		'mo-dest': { type: 'string', default: '' }, // empty: no MO is sent
		'mo-source': { type: 'string', default: '447700900999' },
		'timeout-ms': { type: 'string', default: '20000' },
	},
});

if (!opt['system-id']) {
	process.stderr.write('usage: server.js --system-id ID [--password P] [--expect N] [--mo-dest ADDR] ' +
		'[--host 127.0.0.1] [--port 0] [--timeout-ms MS]\n');
	process.exit(2);
}
const expect = Number(opt.expect);

const summary = {
	event: 'summary',
	binds: [], // {command, system_id, status}
	submits: [], // {message_id, source_addr, destination_addr, registered_delivery, text}
	deliver_sent: 0,
	deliver_resp: [], // {kind: "mo"|"receipt", status}
	unbinds: 0,
	timed_out: false,
};

let reported = false;
function report() {
	if (reported) return;
	if (summary.submits.length < expect || summary.deliver_resp.length < summary.deliver_sent) return;
	reported = true;
	process.stdout.write(JSON.stringify(summary) + '\n');
}

function exit(code) {
	process.stdout.write('', () => process.exit(code));
}

const timer = setTimeout(() => {
	if (!reported) {
		summary.timed_out = true;
		process.stdout.write(JSON.stringify(summary) + '\n');
		reported = true;
		exit(1);
		return;
	}
	exit(0);
}, Number(opt['timeout-ms']));

function text(pdu) {
	const sm = pdu.short_message;
	if (sm && typeof sm === 'object' && 'message' in sm) return String(sm.message);
	if (Buffer.isBuffer(sm)) return sm.toString('latin1');
	return String(sm || '');
}

// SMSC-style date for receipts: YYMMDDhhmm.
function smscDate(d) {
	const p = (n) => String(n).padStart(2, '0');
	return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) + p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function deliver(session, kind, fields) {
	summary.deliver_sent++;
	session.deliver_sm(fields, (resp) => {
		summary.deliver_resp.push({ kind, status: resp.command_status });
		report();
	});
}

let nextID = 0;
let openSessions = 0;

const server = smpp.createServer((session) => {
	openSessions++;
	let bound = false;
	session.on('error', (e) => process.stderr.write('server session error: ' + e + '\n'));
	session.on('close', () => {
		openSessions--;
		if (reported && openSessions === 0) {
			clearTimeout(timer);
			server.close();
			exit(0);
		}
	});

	const onBind = (pdu) => {
		const ok = pdu.system_id === opt['system-id'] && pdu.password === opt.password;
		const status = ok ? 0 : smpp.ESME_RINVPASWD;
		summary.binds.push({ command: pdu.command, system_id: pdu.system_id, status });
		if (!ok) {
			session.send(pdu.response({ command_status: status }));
			session.close();
			return;
		}
		session.send(pdu.response({ system_id: 'nodesmsc' }));
		bound = true;
		if (opt['mo-dest'] && pdu.command !== 'bind_transmitter') {
			deliver(session, 'mo', {
				source_addr: opt['mo-source'],
				destination_addr: opt['mo-dest'],
				esm_class: 0,
				data_coding: 0,
				short_message: 'mo from node',
			});
		}
	};
	session.on('bind_transceiver', onBind);
	session.on('bind_transmitter', onBind);
	session.on('bind_receiver', onBind);

	session.on('submit_sm', (pdu) => {
		if (!bound) {
			session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
			return;
		}
		const id = 'node-' + String(++nextID);
		const t = text(pdu);
		summary.submits.push({
			message_id: id,
			source_addr: pdu.source_addr,
			destination_addr: pdu.destination_addr,
			registered_delivery: pdu.registered_delivery,
			text: t,
		});
		session.send(pdu.response({ message_id: id }));
		if (pdu.registered_delivery & 1) {
			const now = smscDate(new Date());
			deliver(session, 'receipt', {
				source_addr: pdu.destination_addr,
				destination_addr: pdu.source_addr,
				esm_class: 0x04,
				data_coding: 0,
				short_message: 'id:' + id + ' sub:001 dlvrd:001 submit date:' + now + ' done date:' + now +
					' stat:DELIVRD err:000 text:' + t.slice(0, 20),
				receipted_message_id: id,
				message_state: 2, // DELIVERED
			});
		}
		report();
	});
	session.on('enquire_link', (pdu) => session.send(pdu.response()));
	session.on('unbind', (pdu) => {
		summary.unbinds++;
		session.send(pdu.response());
		session.close();
	});
});

server.on('error', (e) => {
	process.stderr.write('server error: ' + e + '\n');
	exit(2);
});
server.listen(Number(opt.port), opt.host, () => {
	process.stdout.write(JSON.stringify({ event: 'listening', port: server.address().port }) + '\n');
	report(); // --expect 0 reports at once
});

#!/usr/bin/env node
// An ESME built on the npm "smpp" package, run by gateway/interop_node_test.go against smppgw's SMSC
// role. It binds as transceiver, submits --count messages, waits for every submit_sm_resp (and, with
// --receipts, for a delivery receipt per accepted message), answers every deliver_sm, unbinds and
// prints one JSON summary line on stdout. Diagnostics go to stderr. The whole run is bounded by
// --timeout-ms; on timeout the summary is still printed, with timed_out true, and the exit code is 1.
'use strict';

const { parseArgs } = require('node:util');
const smpp = require('smpp');

const { values: opt } = parseArgs({
	options: {
		host: { type: 'string', default: '127.0.0.1' },
		port: { type: 'string' },
		'system-id': { type: 'string' },
		password: { type: 'string', default: '' },
		count: { type: 'string', default: '10' },
		dest: { type: 'string', default: '4477009000' }, // destination_addr prefix; the index is appended
		source: { type: 'string', default: '12345' },
		receipts: { type: 'boolean', default: false }, // ask for receipts (registered_delivery 1) and wait for them
		'expect-mo': { type: 'string', default: '0' }, // MO deliver_sm (not receipts) to wait for
		'timeout-ms': { type: 'string', default: '20000' },
	},
});

if (!opt.port || !opt['system-id']) {
	process.stderr.write('usage: client.js --port N --system-id ID [--password P] [--count N] [--receipts] ' +
		'[--expect-mo N] [--dest PREFIX] [--host 127.0.0.1] [--timeout-ms MS]\n');
	process.exit(2);
}
const count = Number(opt.count);
const expectMO = Number(opt['expect-mo']);
const timeoutMs = Number(opt['timeout-ms']);

const summary = {
	bind_status: null,
	submitted: 0,
	responses: [], // {seq, status, message_id} per submit_sm_resp, in arrival order
	receipts: [], // {receipted_message_id, message_state, stat, source_addr, destination_addr, text}
	mo: [], // {source_addr, destination_addr, text}
	unbind_status: null,
	timed_out: false,
	errors: [],
};

let finished = false;
function finish(code) {
	if (finished) return;
	finished = true;
	clearTimeout(timer);
	process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(code));
}

const timer = setTimeout(() => {
	summary.timed_out = true;
	session.destroy();
	finish(1);
}, timeoutMs);

function text(pdu) {
	const sm = pdu.short_message;
	if (sm && typeof sm === 'object' && 'message' in sm) return String(sm.message);
	if (Buffer.isBuffer(sm)) return sm.toString('latin1');
	return String(sm || '');
}

function done() {
	const acked = summary.responses.filter((r) => r.status === 0).length;
	return summary.responses.length === count &&
		(!opt.receipts || summary.receipts.length >= acked) &&
		summary.mo.length >= expectMO;
}

function maybeUnbind() {
	if (!done() || summary.unbind_status !== null) return;
	summary.unbind_status = -1; // sent, not answered yet
	session.unbind({}, (pdu) => {
		summary.unbind_status = pdu.command_status;
		session.close();
	});
}

const session = smpp.connect({ host: opt.host, port: Number(opt.port) });
session.on('error', (e) => summary.errors.push(String(e && e.message ? e.message : e)));
session.on('close', () => finish(summary.timed_out || !done() ? 1 : 0));

session.on('deliver_sm', (pdu) => {
	// esm_class bits 2-5 say what kind of message this is; 0x04 is an SMSC delivery receipt.
	if ((pdu.esm_class & 0x3c) === 0x04) {
		const t = text(pdu);
		const m = /stat:(\w+)/i.exec(t);
		summary.receipts.push({
			receipted_message_id: pdu.receipted_message_id || null,
			message_state: pdu.message_state === undefined ? null : pdu.message_state,
			stat: m ? m[1] : null,
			source_addr: pdu.source_addr,
			destination_addr: pdu.destination_addr,
			text: t,
		});
	} else {
		summary.mo.push({ source_addr: pdu.source_addr, destination_addr: pdu.destination_addr, text: text(pdu) });
	}
	session.send(pdu.response());
	maybeUnbind();
});
session.on('enquire_link', (pdu) => session.send(pdu.response()));
session.on('unbind', (pdu) => {
	session.send(pdu.response());
	session.close();
});

session.on('connect', () => {
	session.bind_transceiver({ system_id: opt['system-id'], password: opt.password }, (pdu) => {
		summary.bind_status = pdu.command_status;
		if (pdu.command_status !== 0) {
			session.close();
			return;
		}
		for (let i = 0; i < count; i++) {
			summary.submitted++;
			session.submit_sm({
				source_addr: opt.source,
				destination_addr: opt.dest + String(i),
				registered_delivery: opt.receipts ? 1 : 0,
				data_coding: 0,
				short_message: 'node interop message ' + i,
			}, (resp) => {
				summary.responses.push({
					seq: resp.sequence_number,
					status: resp.command_status,
					message_id: resp.message_id || '',
				});
				maybeUnbind();
			});
		}
		maybeUnbind();
	});
});

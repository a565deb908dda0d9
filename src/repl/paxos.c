/*
 * paxos.c - Multi-Paxos of one replication group as a pure state machine
 * (contract: paxos.h; protocol, safety argument and driver contract:
 * doc/paxos.md; wire format: paxos_msg.c; its driver: src/node/rnode.c).
 *
 * Every replica is an acceptor; one of them, elected by phase 1, is the
 * leader (distinguished proposer) of a ballot.  The log is contiguous and
 * its ballots never decrease with the LSN, so the core keeps only the ballot
 * changes ("runs") above the commit point instead of the entries: entry data
 * lives in the driver's WAL, and the leader asks the driver to read ranges
 * back when a follower must catch up.
 *
 * Invariants (asserted after every step by state_ok()):
 *   applied <= commit <= last, persisted <= last, applied <= persisted
 *   runs[] ascending, cover [runs[0].first, last], runs[0].first <= max(commit, 1)
 *   when commit >= 1 and the log is not empty, last_ballot = ballot of last
 *   leader: ballot == promised, barrier <= last
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "repl/paxos.h"

/* ---- small helpers ---- */

static void trace(struct qfs_paxos *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(struct qfs_paxos *p, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (!p->prm.tracer)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	p->prm.tracer(p->prm.tracer_arg, p->self, line);
}

/* xorshift64*: deterministic, state in the struct. */
static uint64_t rnd(struct qfs_paxos *p)
{
	uint64_t x = p->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	p->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void cfg_changed(struct qfs_paxos *p);

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static struct qfs_paxos_peer *peer_find(struct qfs_paxos *p, uint32_t id)
{
	for (uint32_t i = 0; i < p->npeers; i++)
		if (p->peers[i].id == id)
			return &p->peers[i];
	return NULL;
}

/* Ballot of entry lsn of the log, 0 if unknown (at or below the commit point). */
static qfs_ballot_t ballot_at(const struct qfs_paxos *p, qfs_lsn_t lsn)
{
	if (lsn == 0 || lsn > p->last)
		return 0;
	if (lsn == p->last)
		return p->last_ballot;
	for (uint32_t i = p->nruns; i-- > 0;)
		if (p->runs[i].first <= lsn)
			return p->runs[i].ballot;
	return 0;
}

/* Does our log hold the leader's entry (lsn, ballot)?  Committed entries are
 * identical on every replica that has them, whatever their ballot. */
static int log_match(const struct qfs_paxos *p, qfs_lsn_t lsn, qfs_ballot_t ballot)
{
	if (lsn == 0)
		return 1;
	if (lsn > p->last)
		return 0;
	if (lsn <= p->commit)
		return 1;
	return ballot_at(p, lsn) == ballot;
}

/* Forget runs wholly below the commit point (keep the one holding commit). */
static void runs_compact(struct qfs_paxos *p)
{
	uint32_t k = 0;

	while (k + 1 < p->nruns && p->runs[k + 1].first <= p->commit)
		k++;
	if (k) {
		memmove(p->runs, p->runs + k, (p->nruns - k) * sizeof(p->runs[0]));
		p->nruns -= k;
	}
	/* Committed CONFIG entries: the newest of them is the base now. */
	for (k = 0; k < p->ncfgs && p->cfgs[k].lsn <= p->commit; k++)
		p->base_cfg = p->cfgs[k].cfg;
	if (k) {
		memmove(p->cfgs, p->cfgs + k, (p->ncfgs - k) * sizeof(p->cfgs[0]));
		p->ncfgs -= k;
	}
}

static void log_truncate(struct qfs_paxos *p, qfs_lsn_t after)
{
	assert(after >= p->commit && after < p->last);
	p->last_ballot = ballot_at(p, after);
	while (p->nruns && p->runs[p->nruns - 1].first > after)
		p->nruns--;
	p->last = after;
	if (p->persisted > after)
		p->persisted = after;
	p->truncate = 1;
	p->truncate_after = after;
	if (p->ncfgs && p->cfgs[p->ncfgs - 1].lsn > after) {
		while (p->ncfgs && p->cfgs[p->ncfgs - 1].lsn > after)
			p->ncfgs--;
		cfg_changed(p);
	}
}

/* Runs needed to append n entries of ballots b[] after truncating to after. */
static uint32_t runs_after_append(const struct qfs_paxos *p, qfs_lsn_t after,
				  const struct qfs_repl_entry *e, uint32_t n)
{
	uint32_t nr = p->nruns;
	qfs_ballot_t lastb;

	while (nr && p->runs[nr - 1].first > after)
		nr--;
	lastb = nr ? p->runs[nr - 1].ballot : 0;
	for (uint32_t i = 0; i < n; i++)
		if (e[i].ballot != lastb) {
			nr++;
			lastb = e[i].ballot;
		}
	return nr;
}

/* Append one entry (lsn already last + 1) to the log and the persist list. */
static void log_append(struct qfs_paxos *p, const struct qfs_repl_entry *e)
{
	assert(e->lsn == p->last + 1 && p->npersist <= QFS_PAXOS_MAX_BATCH);
	if (!p->nruns || p->runs[p->nruns - 1].ballot != e->ballot) {
		assert(p->nruns < QFS_PAXOS_MAX_RUNS);
		p->runs[p->nruns].first = e->lsn;
		p->runs[p->nruns].ballot = e->ballot;
		p->nruns++;
	}
	p->last = e->lsn;
	p->last_ballot = e->ballot;
	p->persist[p->npersist++] = *e;
	if (e->type == QFS_REPL_ENTRY_CONFIG) {
		struct qfs_paxos_cfgent *ce = &p->cfgs[p->ncfgs];

		/* checked by the caller: it decodes, and there is room */
		assert(p->ncfgs < QFS_PAXOS_MAX_CFGS);
		memset(ce, 0, sizeof(*ce));
		ce->lsn = e->lsn;
		if (qfs_paxos_config_decode(e->data, e->len, &ce->cfg) == 0) {
			p->ncfgs++;
			cfg_changed(p);
		}
	}
}

static struct qfs_paxos_msg *msg_new(struct qfs_paxos *p, uint8_t type, uint32_t to)
{
	struct qfs_paxos_msg *m;

	if (p->nmsgs == QFS_PAXOS_MAX_MSGS) {
		trace(p, "event=msg_dropped reason=full type=%u to=%u", type, to);
		return NULL;
	}
	m = &p->msgs[p->nmsgs++];
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->from = p->self;
	m->to = to;
	m->group = p->group;
	m->promised = p->promised;
	m->last_lsn = p->last;
	return m;
}

static void set_promised(struct qfs_paxos *p, qfs_ballot_t b)
{
	if (b > p->promised) {
		p->promised = b;
		p->save_promise = 1;
	}
}

static int is_member(const struct qfs_paxos *p, uint32_t id)
{
	for (uint32_t i = 0; i < p->cfg.n; i++)
		if (p->cfg.ids[i] == id)
			return 1;
	return 0;
}

/* A member that may lead: in the configuration, and a storage replica (a
 * log replica holds no store: it never campaigns, section 7a). */
static int may_lead(const struct qfs_paxos *p, uint32_t id)
{
	return is_member(p, id) && !qfs_paxos_config_is_log(&p->cfg, id);
}

/* The preferred member, 0 if none (not set, or not in the config). */
static uint32_t preferred(const struct qfs_paxos *p)
{
	if (p->prm.preferred == QFS_PAXOS_PREFERRED_AUTO)
		return qfs_paxos_preferred(p->group, &p->cfg);
	return p->prm.preferred && may_lead(p, p->prm.preferred) ? p->prm.preferred : 0;
}

static int cfg_has(const struct qfs_paxos_config *c, uint32_t id)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->ids[i] == id)
			return 1;
	return 0;
}

static int cfg_ok(const struct qfs_paxos_config *c)
{
	if (!c->n || c->n > QFS_PAXOS_MAX_NODES || (c->log >> c->n) ||
	    c->log == (1u << c->n) - 1)
		return 0; /* a log bit beyond the members, or no storage member */
	for (uint32_t i = 0; i < c->n; i++) {
		if (!c->ids[i] || c->ids[i] > 0xffff)
			return 0;
		for (uint32_t j = 0; j < i; j++)
			if (c->ids[j] == c->ids[i])
				return 0;
	}
	return 1;
}

static void request_read(struct qfs_paxos *p, struct qfs_paxos_peer *pe);

/* The configuration in force changed (a CONFIG entry appended, truncated,
 * or a snapshot): rebuild the peers from it, keeping the progress of those
 * that stay.  A leader starts a new member from LSN 1 (or a snapshot) and
 * forgets its lease: it earns one again from a quorum of the new
 * configuration (doc/paxos.md section 7). */
static void cfg_changed(struct qfs_paxos *p)
{
	const struct qfs_paxos_config *c = p->ncfgs ? &p->cfgs[p->ncfgs - 1].cfg : &p->base_cfg;
	struct qfs_paxos_peer old[QFS_PAXOS_MAX_NODES];
	uint32_t nold = p->npeers;

	if (c->n == p->cfg.n && c->log == p->cfg.log &&
	    !memcmp(c->ids, p->cfg.ids, c->n * sizeof(c->ids[0])))
		return;
	memcpy(old, p->peers, sizeof(old));
	p->cfg = *c;
	p->npeers = 0;
	memset(p->peers, 0, sizeof(p->peers));
	for (uint32_t i = 0; i < c->n; i++) {
		struct qfs_paxos_peer *pe = &p->peers[p->npeers];
		int found = 0;

		if (c->ids[i] == p->self)
			continue;
		for (uint32_t j = 0; j < nold; j++)
			if (old[j].id == c->ids[i]) {
				*pe = old[j];
				found = 1;
			}
		p->npeers++;
		if (found)
			continue;
		pe->id = c->ids[i];
		pe->next = 1;
		pe->progress_ms = p->now;
		if (p->role == QFS_PAXOS_LEADER)
			request_read(p, pe);
	}
	trace(p, "event=config n=%u ids=%u,%u,%u,%u,%u log=%#x member=%d", c->n, c->ids[0],
	      c->ids[1], c->ids[2], c->ids[3], c->ids[4], c->log, cfg_has(c, p->self));
	if (p->role == QFS_PAXOS_LEADER) {
		p->lease_until = 0;
		p->lead_since = p->now; /* (check-quorum and handoff count from here) */
		for (uint32_t i = 0; i < p->npeers; i++)
			p->peers[i].lease_sent_ms = 0;
	}
}

static void election_reset(struct qfs_paxos *p)
{
	uint64_t span = p->prm.election_max_ms - p->prm.election_min_ms;

	p->election_at = p->now + p->prm.election_min_ms + (span ? rnd(p) % span : 0);
}

/* Leadership balance: a member other than the preferred one that followed
 * another member waits one more election span (at least election_min_ms)
 * before it campaigns, so that the preferred member, probably alive, wins
 * the election that replaces that leader.  Not when the last leader it
 * followed is the preferred member (it went silent: likely down) nor when
 * it followed nobody yet (after a restart): fail over at full speed, the
 * handover puts the preferred member back later. */
static uint64_t campaign_at(const struct qfs_paxos *p)
{
	uint32_t pref = preferred(p);
	uint64_t at = max64(p->election_at, p->lease_grant_until);
	uint64_t span = p->prm.election_max_ms - p->prm.election_min_ms;

	if (pref && pref != p->self && p->last_leader && p->last_leader != pref)
		at += max64(span, p->prm.election_min_ms);
	return at;
}

static void become_follower(struct qfs_paxos *p, qfs_ballot_t ballot, uint32_t leader)
{
	if (p->role != QFS_PAXOS_FOLLOWER || p->leader != leader || p->ballot != ballot)
		trace(p, "event=follow ballot=%llu.%u leader=%u was=%d",
		      (unsigned long long)qfs_paxos_ballot_round(ballot),
		      qfs_paxos_ballot_node(ballot), leader, (int)p->role);
	p->role = QFS_PAXOS_FOLLOWER;
	p->ballot = ballot;
	p->leader = leader;
	if (leader)
		p->last_leader = leader;
	p->lease_until = 0;
	p->barrier = 0;
	p->handoff_until = 0;
	election_reset(p);
}

/* ---- leader: replication to peers ---- */

static void lease_update(struct qfs_paxos *p)
{
	uint32_t need = qfs_paxos_quorum(&p->cfg) - (is_member(p, p->self) ? 1 : 0);
	uint64_t len = p->prm.lease_ms - (uint64_t)p->prm.lease_ms * p->prm.drift_pct / 100;
	uint64_t best = 0;

	if (need == 0) {
		p->lease_until = p->now + len;
		return;
	}
	/* The newest send time t such that need peers granted at or after t:
	 * with us, a quorum promised nobody else until t + lease_ms. */
	for (uint32_t i = 0; i < p->npeers; i++) {
		uint64_t c = p->peers[i].lease_sent_ms;
		uint32_t ge = 0;

		if (!c || c <= best)
			continue;
		for (uint32_t j = 0; j < p->npeers; j++)
			if (p->peers[j].lease_sent_ms >= c)
				ge++;
		if (ge >= need)
			best = c;
	}
	if (best)
		p->lease_until = max64(p->lease_until, best + len);
}

/* Leader commit: the highest LSN of its own ballot durable on a quorum.
 * Entries of earlier ballots commit with it (they precede it in the log). */
static void leader_commit(struct qfs_paxos *p)
{
	uint32_t q = qfs_paxos_quorum(&p->cfg);
	qfs_lsn_t best = p->commit;

	for (uint32_t i = 0; i < p->npeers + 1; i++) {
		qfs_lsn_t c = i == p->npeers ? p->persisted : p->peers[i].match;
		uint32_t ge = p->persisted >= c && is_member(p, p->self) ? 1 : 0;

		if (c <= best)
			continue;
		for (uint32_t j = 0; j < p->npeers; j++)
			if (p->peers[j].match >= c)
				ge++;
		if (ge >= q && ballot_at(p, c) == p->ballot)
			best = c;
	}
	if (best > p->commit) {
		p->commit = best;
		runs_compact(p);
		trace(p, "event=commit lsn=%llu", (unsigned long long)best);
	}
}

static void send_entries(struct qfs_paxos *p, struct qfs_paxos_peer *pe, qfs_lsn_t prev,
			 qfs_ballot_t prev_ballot, const struct qfs_repl_entry *e, uint32_t n)
{
	struct qfs_paxos_msg *m = msg_new(p, QFS_PAXOS_ACCEPT, pe->id);

	if (!m)
		return;
	m->ballot = p->ballot;
	m->prev_lsn = prev;
	m->prev_ballot = prev_ballot;
	m->commit = p->commit;
	m->time_ms = p->now;
	m->n = n;
	m->entries = n ? e : NULL;
	pe->next = prev + n + 1;
}

/* Ask the driver for the entries pe lacks, or for a snapshot. */
static void request_read(struct qfs_paxos *p, struct qfs_paxos_peer *pe)
{
	struct qfs_paxos_read *r;

	if (pe->read_pending || pe->next > p->last)
		return;
	/* a log replica needs no history: it starts at the snapshot point,
	 * which its driver ships without the store (section 7a) */
	if (pe->next < p->first_retained ||
	    (pe->next == 1 && p->applied && qfs_paxos_config_is_log(&p->cfg, pe->id))) {
		if (p->snapshot_to)
			return;
		p->snapshot_to = pe->id;
		pe->read_pending = 1;
		trace(p, "event=snapshot to=%u next=%llu first_retained=%llu", pe->id,
		      (unsigned long long)pe->next, (unsigned long long)p->first_retained);
		return;
	}
	assert(p->nreads < QFS_PAXOS_MAX_NODES);
	r = &p->reads[p->nreads++];
	r->peer = pe->id;
	r->from = pe->next;
	r->to = min64(p->last, pe->next + QFS_PAXOS_MAX_BATCH - 1);
	pe->read_pending = 1;
}

static void become_leader(struct qfs_paxos *p)
{
	struct qfs_repl_entry noop;
	qfs_lsn_t prev = p->last;
	qfs_ballot_t prevb = p->last_ballot;

	p->role = QFS_PAXOS_LEADER;
	p->leader = p->self;
	p->lease_until = 0;
	p->lead_since = p->now;
	p->handoff_until = 0;
	p->handoff_next = 0;
	for (uint32_t i = 0; i < p->npeers; i++) {
		struct qfs_paxos_peer *pe = &p->peers[i];

		pe->next = p->last + 1;
		pe->match = 0;
		pe->lease_sent_ms = 0;
		pe->progress_ms = p->now;
		pe->read_pending = 0;
		pe->ack_ms = pe->healthy_since_ms = 0;
	}
	/* The barrier: once it commits, every entry before it is chosen. */
	memset(&noop, 0, sizeof(noop));
	noop.lsn = p->last + 1;
	noop.ballot = p->ballot;
	noop.type = QFS_REPL_ENTRY_NOOP;
	log_append(p, &noop);
	p->barrier = noop.lsn;
	trace(p, "event=leader ballot=%llu.%u barrier=%llu commit=%llu",
	      (unsigned long long)qfs_paxos_ballot_round(p->ballot), p->self,
	      (unsigned long long)p->barrier, (unsigned long long)p->commit);
	for (uint32_t i = 0; i < p->npeers; i++)
		send_entries(p, &p->peers[i], prev, prevb, &p->persist[p->npersist - 1], 1);
	p->heartbeat_at = p->now + p->prm.heartbeat_ms;
	if (p->cfg.n == 1)
		leader_commit(p);
}

/* 1 while this replica's log is behind its vote floor (doc/paxos.md
 * section 7): the CONFIG entries it holds there are its node's earlier
 * membership, and its own vote would stand for what that incarnation
 * promised and accepted, which it forgot: it does not campaign. */
static int below_floor(const struct qfs_paxos *p)
{
	return p->last_ballot < p->floor_ballot ||
	       (p->last_ballot == p->floor_ballot && p->last < p->floor_lsn);
}

static void campaign(struct qfs_paxos *p)
{
	uint64_t round = max64(qfs_paxos_ballot_round(p->promised), p->max_round) + 1;

	p->max_round = round;
	p->role = QFS_PAXOS_CANDIDATE;
	p->ballot = QFS_PAXOS_BALLOT(round, p->self);
	p->leader = 0;
	set_promised(p, p->ballot);
	election_reset(p);
	trace(p, "event=campaign ballot=%llu.%u last=%llu commit=%llu",
	      (unsigned long long)round, p->self, (unsigned long long)p->last,
	      (unsigned long long)p->commit);
	for (uint32_t i = 0; i < p->npeers; i++) {
		struct qfs_paxos_msg *m = msg_new(p, QFS_PAXOS_PREPARE, p->peers[i].id);

		p->peers[i].voted = 0;
		if (!m)
			continue;
		m->ballot = p->ballot;
		m->last_ballot = p->last_ballot;
		m->commit = p->commit;
	}
	if (qfs_paxos_quorum(&p->cfg) == 1)
		become_leader(p);
}

/* ---- message handlers ---- */

static void on_prepare(struct qfs_paxos *p, const struct qfs_paxos_msg *in)
{
	struct qfs_paxos_msg *m;
	int ok = 0;
	const char *why = "granted";

	if (in->ballot < p->promised) {
		why = "stale";
	} else if (in->ballot == p->promised) {
		ok = p->role != QFS_PAXOS_LEADER; /* a re-sent prepare of the same candidate */
		why = ok ? "again" : "mine";
	} else if (p->now < p->lease_grant_until && p->lease_grant_ballot != in->ballot &&
		   qfs_paxos_ballot_node(p->lease_grant_ballot) != in->from) {
		/* (a grant to the candidate's own earlier ballot protected only
		 * its own reads, which it gave up when it stopped leading) */
		why = "lease";
	} else if (p->role == QFS_PAXOS_LEADER && p->now < p->lease_until) {
		why = "leader_lease";
	} else if (in->last_ballot < p->last_ballot ||
		   (in->last_ballot == p->last_ballot && in->last_lsn < p->last)) {
		why = "log_behind";
	} else if (in->last_ballot < p->floor_ballot ||
		   (in->last_ballot == p->floor_ballot && in->last_lsn < p->floor_lsn)) {
		/* An added member votes as if its log already held the
		 * committed point it was created at (doc/paxos.md section 7):
		 * a candidate behind it may lack entries chosen with the
		 * votes of this node's earlier incarnation. */
		why = "floor";
	} else {
		ok = 1;
		set_promised(p, in->ballot);
		become_follower(p, in->ballot, 0);
	}
	trace(p, "event=prepare from=%u ballot=%llu.%u ok=%d why=%s", in->from,
	      (unsigned long long)qfs_paxos_ballot_round(in->ballot),
	      qfs_paxos_ballot_node(in->ballot), ok, why);
	m = msg_new(p, QFS_PAXOS_PROMISE, in->from);
	if (!m)
		return;
	m->ok = (uint8_t)ok;
	m->ballot = in->ballot;
	m->last_ballot = p->last_ballot;
	m->commit = p->commit;
}

static void on_promise(struct qfs_paxos *p, const struct qfs_paxos_msg *in)
{
	struct qfs_paxos_peer *pe = peer_find(p, in->from);
	uint32_t votes = 1;

	if (p->role != QFS_PAXOS_CANDIDATE || in->ballot != p->ballot || !pe)
		return;
	if (!in->ok)
		return; /* max_round already noted; the next campaign goes higher */
	pe->voted = 1;
	for (uint32_t i = 0; i < p->npeers; i++)
		votes += p->peers[i].voted ? 1 : 0;
	if (votes >= qfs_paxos_quorum(&p->cfg))
		become_leader(p);
}

static void reply_accepted(struct qfs_paxos *p, const struct qfs_paxos_msg *in, int ok,
			   qfs_lsn_t match)
{
	struct qfs_paxos_msg *m = msg_new(p, QFS_PAXOS_ACCEPTED, in->from);

	if (!m)
		return;
	m->ok = (uint8_t)ok;
	m->ballot = in->ballot;
	m->match = match;
	m->last_lsn = p->last;
	m->time_ms = in->time_ms;
}

static void on_accept(struct qfs_paxos *p, const struct qfs_paxos_msg *in)
{
	qfs_lsn_t lsn;
	uint32_t i;

	if (in->ballot < p->promised) {
		reply_accepted(p, in, 0, 0);
		return;
	}
	set_promised(p, in->ballot);
	if (p->role != QFS_PAXOS_FOLLOWER || p->leader != in->from || p->ballot != in->ballot)
		become_follower(p, in->ballot, in->from);
	else
		election_reset(p);
	/* The lease we grant: no promise to another ballot for lease_ms of our clock. */
	p->lease_grant_until = p->now + p->prm.lease_ms;
	p->lease_grant_ballot = in->ballot;

	if (in->n == 0) {
		/* Heartbeat: in->commit is at most what we acknowledged in this ballot. */
		if (min64(in->commit, p->last) > p->commit) {
			p->commit = min64(in->commit, p->last);
			runs_compact(p);
		}
		/* Our log up to commit is the chosen prefix, which the leader's log
		 * holds too, and everything we hold is durable when this is sent. */
		reply_accepted(p, in, 1, p->commit);
		return;
	}
	if (in->prev_lsn > p->last) {
		reply_accepted(p, in, 0, p->last);
		return;
	}
	if (!log_match(p, in->prev_lsn, in->prev_ballot)) {
		qfs_lsn_t hint = in->prev_lsn - 1;

		for (uint32_t k = p->nruns; k-- > 0;)
			if (p->runs[k].first <= in->prev_lsn) {
				hint = p->runs[k].first - 1;
				break;
			}
		reply_accepted(p, in, 0, max64(hint, p->commit));
		return;
	}
	/* Skip what we already hold; the first conflict truncates our suffix. */
	for (i = 0, lsn = in->prev_lsn + 1; i < in->n && lsn <= p->last; i++, lsn++)
		if (lsn > p->commit && ballot_at(p, lsn) != in->entries[i].ballot)
			break;
	if (i < in->n) {
		uint32_t ncfg = 0;
		int bad = 0;

		if (runs_after_append(p, lsn - 1, in->entries + i, in->n - i) > QFS_PAXOS_MAX_RUNS) {
			trace(p, "event=accept_refused reason=runs lsn=%llu", (unsigned long long)lsn);
			reply_accepted(p, in, 0, p->commit);
			return;
		}
		/* CONFIG entries: each must decode, and fit with those we keep. */
		for (uint32_t k = 0; k < p->ncfgs; k++)
			ncfg += p->cfgs[k].lsn < lsn;
		for (uint32_t k = i; k < in->n; k++) {
			struct qfs_paxos_config nc;

			if (in->entries[k].type != QFS_REPL_ENTRY_CONFIG)
				continue;
			ncfg++;
			bad |= qfs_paxos_config_decode(in->entries[k].data, in->entries[k].len, &nc) != 0;
		}
		if (bad || ncfg > QFS_PAXOS_MAX_CFGS) {
			trace(p, "event=accept_refused reason=config lsn=%llu bad=%d", (unsigned long long)lsn, bad);
			reply_accepted(p, in, 0, p->commit);
			return;
		}
		if (lsn <= p->last) {
			trace(p, "event=truncate after=%llu last=%llu", (unsigned long long)(lsn - 1),
			      (unsigned long long)p->last);
			log_truncate(p, lsn - 1);
		}
		for (; i < in->n; i++) {
			struct qfs_repl_entry e = in->entries[i];

			e.lsn = p->last + 1;
			log_append(p, &e);
		}
	}
	if (min64(in->commit, in->prev_lsn + in->n) > p->commit) {
		p->commit = min64(in->commit, in->prev_lsn + in->n);
		runs_compact(p);
	}
	reply_accepted(p, in, 1, in->prev_lsn + in->n);
}

static void step_down(struct qfs_paxos *p, qfs_ballot_t seen)
{
	trace(p, "event=step_down ballot=%llu.%u seen=%llu.%u",
	      (unsigned long long)qfs_paxos_ballot_round(p->ballot), qfs_paxos_ballot_node(p->ballot),
	      (unsigned long long)qfs_paxos_ballot_round(seen), qfs_paxos_ballot_node(seen));
	become_follower(p, p->ballot, 0);
}

static void on_accepted(struct qfs_paxos *p, const struct qfs_paxos_msg *in)
{
	struct qfs_paxos_peer *pe = peer_find(p, in->from);

	if (p->role != QFS_PAXOS_LEADER || in->ballot != p->ballot || !pe)
		return;
	if (in->promised > p->ballot) {
		/* A follower promised a higher ballot: most often one of its
		 * own, a replica back with a stale log campaigning alone, which
		 * the others refuse (lease, log behind) and which refuses our
		 * lower ballot.  Campaign above it at once instead of leaving
		 * the group without a leader for an election timeout while that
		 * replica campaigns again and again (sim seeds 3820, 5938:
		 * with a lease; 48062: a leader elected a moment before, its
		 * lease not earned yet: a leaderless livelock).  A candidate
		 * that can win takes our PREPARE or is taken by it, by the
		 * usual rules.  Timing only: a campaign is always safe. */
		step_down(p, in->promised);
		if (may_lead(p, p->self) && !below_floor(p))
			campaign(p);
		return;
	}
	if (!pe->ack_ms || p->now - pe->ack_ms > p->prm.retry_ms)
		pe->healthy_since_ms = p->now;
	pe->ack_ms = p->now;
	if (in->time_ms > pe->lease_sent_ms && in->time_ms <= p->now) {
		pe->lease_sent_ms = in->time_ms;
		lease_update(p);
	}
	/* (match <= last_lsn: a sender that does not fill last_lsn, an older
	 * version, always sends 0 there and is never taken for a lost log) */
	if (in->last_lsn < pe->match && in->match <= in->last_lsn && in->time_ms >= pe->lease_sent_ms) {
		/* A fresh reply (it answers our newest send) from a follower
		 * whose log is shorter than what it acknowledged in this ballot:
		 * its log was lost (a wiped disk).  Start it over from the
		 * beginning of the log, or from a snapshot if that is released;
		 * commit never goes back, a lower match only makes commits more
		 * careful. */
		trace(p, "event=peer_reset peer=%u match=%llu last=%llu", pe->id,
		      (unsigned long long)pe->match, (unsigned long long)in->last_lsn);
		pe->match = 0;
		pe->next = 1;
		pe->read_pending = 0;
		pe->progress_ms = p->now;
	} else if (in->ok) {
		if (in->match > pe->match && in->match <= p->last) {
			pe->match = in->match;
			pe->progress_ms = p->now;
			if (pe->next <= pe->match)
				pe->next = pe->match + 1;
			leader_commit(p);
		}
	} else {
		qfs_lsn_t next = min64(pe->next, in->match + 1);

		pe->next = max64(next, pe->match + 1);
	}
	request_read(p, pe);
}

/* The leader of ballot in->ballot stepped down for us (we are its preferred
 * member and held its whole log): campaign now, without waiting for the
 * lease we granted to that ballot to run out.  Safe: that lease protected
 * only the sender's reads, and the sender gave its lease up before it sent
 * this (it is a follower now, doc/paxos.md section 6).  A grant to any
 * other ballot, or the restart block, is still honoured; a stale or
 * duplicated HANDOFF (we follow another ballot by now) is ignored. */
static void on_handoff(struct qfs_paxos *p, const struct qfs_paxos_msg *in)
{
	struct qfs_paxos_msg *m;
	int ok;

	if (!in->ok) {
		/* Our HANDOFF was refused: we stepped down from that ballot for
		 * nothing, so campaign again at once (the others' grants to our
		 * own ballot do not hold us back: on_prepare). */
		ok = p->role == QFS_PAXOS_FOLLOWER && !p->leader && in->ballot == p->ballot &&
		     qfs_paxos_ballot_node(p->ballot) == p->self && may_lead(p, p->self) &&
		     !below_floor(p);
		trace(p, "event=handoff_refused from=%u campaign=%d", in->from, ok);
		if (ok)
			campaign(p);
		return;
	}
	ok = p->role == QFS_PAXOS_FOLLOWER && in->ballot == p->ballot && p->leader == in->from &&
	     in->ballot == p->promised && may_lead(p, p->self) && !below_floor(p) &&
	     (preferred(p) == p->self || !is_member(p, in->from)) && p->now >= p->boot_grant_until &&
	     (p->now >= p->lease_grant_until || p->lease_grant_ballot == in->ballot) &&
	     in->last_lsn == p->last && in->last_ballot == p->last_ballot;
	trace(p, "event=handoff_received from=%u ballot=%llu.%u ok=%d", in->from,
	      (unsigned long long)qfs_paxos_ballot_round(in->ballot), qfs_paxos_ballot_node(in->ballot), ok);
	if (ok) {
		campaign(p);
		return;
	}
	m = msg_new(p, QFS_PAXOS_HANDOFF, in->from);
	if (m)
		m->ballot = in->ballot; /* ok 0: refused */
}

static void on_receive(struct qfs_paxos *p, const struct qfs_paxos_msg *in)
{
	/* A PREPARE or an ACCEPT is taken from any replica, member or not in
	 * the configuration we hold: one that lags may hold an older one that
	 * lacks the candidate or the leader (the ballot makes them legitimate;
	 * the candidate counts its votes in its own configuration).  Replies
	 * count only from peers (on_promise, on_accepted). */
	if (in->to != p->self || in->from == p->self || in->group != p->group) {
		trace(p, "event=msg_ignored reason=address from=%u to=%u", in->from, in->to);
		return;
	}
	p->max_round = max64(p->max_round, qfs_paxos_ballot_round(in->ballot));
	p->max_round = max64(p->max_round, qfs_paxos_ballot_round(in->promised));
	switch (in->type) {
	case QFS_PAXOS_PREPARE:
		on_prepare(p, in);
		break;
	case QFS_PAXOS_PROMISE:
		on_promise(p, in);
		break;
	case QFS_PAXOS_ACCEPT:
		on_accept(p, in);
		break;
	case QFS_PAXOS_ACCEPTED:
		on_accepted(p, in);
		break;
	case QFS_PAXOS_HANDOFF:
		on_handoff(p, in);
		break;
	default:
		break;
	}
}

/* ---- other events ---- */

static int on_propose(struct qfs_paxos *p, const struct qfs_repl_entry *in, uint32_t n)
{
	qfs_lsn_t prev = p->last;
	qfs_ballot_t prevb = p->last_ballot;
	uint32_t first = p->npersist;

	if (p->role != QFS_PAXOS_LEADER)
		return -EREMOTE;
	if (p->handoff_until || !is_member(p, p->self))
		return -EAGAIN; /* handing over, or leaving the configuration: the
				 * proposer retries at the next leader */
	if (n > QFS_PAXOS_MAX_BATCH || p->last + n - p->commit > QFS_PAXOS_WINDOW)
		return -EAGAIN;
	if (p->last > UINT64_MAX - n || (n && !in))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		struct qfs_paxos_config nc;

		if ((in[i].type != QFS_REPL_ENTRY_TXN && in[i].type != QFS_REPL_ENTRY_NOOP &&
		     in[i].type != QFS_REPL_ENTRY_CONFIG) ||
		    (!in[i].data && in[i].len))
			return -EINVAL;
		if (in[i].type != QFS_REPL_ENTRY_CONFIG)
			continue;
		/* One member at a time, one change at a time, and only once a
		 * barrier of this ballot committed (doc/paxos.md section 7). */
		if (n != 1 || qfs_paxos_config_decode(in[i].data, in[i].len, &nc) ||
		    !qfs_paxos_config_one_change(&p->cfg, &nc))
			return -EINVAL;
		if (p->ncfgs || p->commit < p->barrier)
			return -EBUSY;
	}
	if (p->nruns == QFS_PAXOS_MAX_RUNS && p->last_ballot != p->ballot)
		return -EAGAIN; /* cannot happen for a leader: its ballot's run exists */
	for (uint32_t i = 0; i < n; i++) {
		struct qfs_repl_entry e = in[i];

		e.lsn = p->last + 1;
		e.ballot = p->ballot;
		log_append(p, &e);
	}
	for (uint32_t i = 0; i < p->npeers; i++)
		if (p->peers[i].next == prev + 1 && !p->peers[i].read_pending)
			send_entries(p, &p->peers[i], prev, prevb, &p->persist[first], n);
	return 0;
}

static int on_log_entries(struct qfs_paxos *p, const struct qfs_paxos_event *ev)
{
	struct qfs_paxos_peer *pe = peer_find(p, ev->peer);

	if (ev->n > QFS_PAXOS_MAX_BATCH || (ev->n && !ev->entries))
		return -EINVAL;
	if (p->role != QFS_PAXOS_LEADER || !pe)
		return 0;
	pe->read_pending = 0;
	if (ev->lsn + 1 != pe->next || ev->n == 0) {
		request_read(p, pe);
		return 0;
	}
	for (uint32_t i = 0; i < ev->n; i++) {
		const struct qfs_repl_entry *e = &ev->entries[i];

		if (e->lsn != ev->lsn + 1 + i || !log_match(p, e->lsn, e->ballot) ||
		    (e->type != QFS_REPL_ENTRY_TXN && e->type != QFS_REPL_ENTRY_NOOP &&
		     e->type != QFS_REPL_ENTRY_CONFIG)) {
			trace(p, "event=log_entries_ignored peer=%u lsn=%llu", pe->id,
			      (unsigned long long)e->lsn);
			return 0;
		}
	}
	/* One batch per answer: the next read waits for its acknowledgement, so
	 * catch-up is paced by the follower and a refusal cannot multiply. */
	send_entries(p, pe, ev->lsn, ev->ballot, ev->entries, ev->n);
	return 0;
}

static void on_snapshot(struct qfs_paxos *p, qfs_lsn_t lsn, qfs_ballot_t ballot,
			const struct qfs_paxos_config *cfg)
{
	struct qfs_paxos_msg *m;

	if (lsn <= p->commit)
		return;
	/* A snapshot comes from a leader: if we thought we led, we do not. */
	if (p->role != QFS_PAXOS_FOLLOWER)
		become_follower(p, p->ballot, 0);
	if (lsn < p->last && ballot_at(p, lsn) == ballot) {
		/* Our log holds the snapshot's last entry, hence everything before
		 * it: keep the entries after it (we may have acknowledged them). */
		p->commit = p->applied = lsn;
		p->persisted = max64(p->persisted, lsn);
		runs_compact(p);
	} else {
		if (p->last > lsn) {
			p->truncate = 1; /* a suffix that follows a different entry */
			p->truncate_after = lsn;
		}
		p->last = p->persisted = p->commit = p->applied = lsn;
		p->last_ballot = ballot;
		p->runs[0].first = lsn;
		p->runs[0].ballot = ballot;
		p->nruns = 1;
		p->ncfgs = 0;
	}
	/* the configuration at the snapshot point is the base now */
	if (cfg && cfg_ok(cfg))
		p->base_cfg = *cfg;
	cfg_changed(p);
	p->first_retained = lsn + 1;
	trace(p, "event=snapshot_installed lsn=%llu", (unsigned long long)lsn);
	if (p->role == QFS_PAXOS_FOLLOWER && p->leader) {
		m = msg_new(p, QFS_PAXOS_ACCEPTED, p->leader);
		if (m) {
			m->ok = 1;
			m->ballot = p->ballot;
			m->match = lsn;
		}
	}
}

/* Leader: hand leadership to the preferred member once it is healthy (it
 * acknowledged recently) and we have led for a while: refuse proposals
 * for at most an election timeout until it holds our whole log and that
 * log is committed, then give our lease up, step down and tell it to
 * campaign (HANDOFF).  If it does not catch up in time, carry on leading
 * and try again later. */
static void handoff(struct qfs_paxos *p)
{
	uint32_t pref = preferred(p);
	struct qfs_paxos_peer *pe = pref && pref != p->self ? peer_find(p, pref) : NULL;
	struct qfs_paxos_msg *m;

	if (!pe)
		return;
	if (!p->handoff_until) {
		/* (healthy for longer than a lease: a restarted member's
		 * restart block is over, so it can take the HANDOFF) */
		if (p->now < p->lead_since + p->prm.lease_ms + p->prm.election_max_ms ||
		    p->now < p->handoff_next || !pe->lease_sent_ms || !pe->healthy_since_ms ||
		    p->now - pe->healthy_since_ms < (uint64_t)p->prm.lease_ms + p->prm.election_min_ms ||
		    p->now - pe->lease_sent_ms > p->prm.retry_ms || p->commit < p->barrier ||
		    pe->match + QFS_PAXOS_MAX_BATCH < p->last)
			return;
		p->handoff_until = p->now + p->prm.election_min_ms;
		trace(p, "event=handoff_start to=%u match=%llu last=%llu", pref,
		      (unsigned long long)pe->match, (unsigned long long)p->last);
	}
	if (pe->match < p->last || p->commit < p->last || p->persisted < p->last) {
		if (p->now >= p->handoff_until) {
			trace(p, "event=handoff_abandoned to=%u match=%llu last=%llu", pref,
			      (unsigned long long)pe->match, (unsigned long long)p->last);
			p->handoff_until = 0;
			p->handoff_next = p->now + 4ull * p->prm.election_max_ms;
		}
		return;
	}
	if (p->nmsgs == QFS_PAXOS_MAX_MSGS)
		return; /* no room for the message this step: the next one */
	trace(p, "event=handoff to=%u last=%llu", pref, (unsigned long long)p->last);
	become_follower(p, p->ballot, 0); /* gives the lease up: no more local reads */
	m = msg_new(p, QFS_PAXOS_HANDOFF, pref);
	m->ok = 1;
	m->ballot = p->ballot;
	m->last_ballot = p->last_ballot;
	m->commit = p->commit;
}

/* Leader: the configuration that leaves us out is committed: step down
 * and hand over to a member that holds our whole log (the preferred one
 * if it does), which campaigns at once (doc/paxos.md section 7). */
static void leave(struct qfs_paxos *p)
{
	struct qfs_paxos_peer *to = NULL;
	struct qfs_paxos_msg *m;

	for (uint32_t i = 0; i < p->npeers; i++)
		if (p->peers[i].match == p->last && may_lead(p, p->peers[i].id) &&
		    (!to || p->peers[i].id == preferred(p)))
			to = &p->peers[i];
	trace(p, "event=leave commit=%llu to=%u", (unsigned long long)p->commit, to ? to->id : 0);
	become_follower(p, p->ballot, 0);
	if (!to || p->nmsgs == QFS_PAXOS_MAX_MSGS || p->persisted < p->last)
		return;
	m = msg_new(p, QFS_PAXOS_HANDOFF, to->id);
	m->ok = 1;
	m->ballot = p->ballot;
	m->last_ballot = p->last_ballot;
	m->commit = p->commit;
}

static void timers(struct qfs_paxos *p)
{
	if (p->role != QFS_PAXOS_LEADER) {
		/* (a replica the configuration left out never campaigns, nor
		 * a log replica (section 7a), nor one below its vote floor:
		 * its timer starts again, so that next_tick_ms is not in the
		 * past) */
		if (p->now >= campaign_at(p)) {
			if (may_lead(p, p->self) && !below_floor(p))
				campaign(p);
			else
				election_reset(p);
		}
		return;
	}
	if (!is_member(p, p->self) && !p->ncfgs) {
		leave(p);
		return;
	}
	handoff(p);
	if (p->role != QFS_PAXOS_LEADER)
		return;
	if (p->now >= p->heartbeat_at) {
		p->heartbeat_at = p->now + p->prm.heartbeat_ms;
		for (uint32_t i = 0; i < p->npeers; i++) {
			struct qfs_paxos_peer *pe = &p->peers[i];
			struct qfs_paxos_msg *m;

			if (pe->ack_ms && pe->match < p->last &&
			    p->now - pe->progress_ms >= p->prm.retry_ms) {
				/* No progress: go back to what it acknowledged.  (Not
				 * for a peer that has not answered this leader yet:
				 * its match is unknown, not 0, and next = 1 would ship
				 * it a whole snapshot once the log is compacted,
				 * though it may hold nearly all of it (a stopped or
				 * slow follower); its first answer says where its log
				 * ends.  No time bound: a live peer answers the
				 * heartbeat below, and one that never answers could
				 * not take a snapshot; doc/paxos.md, catch-up.) */
				pe->next = pe->match + 1;
				pe->read_pending = 0;
				pe->progress_ms = p->now;
			}
			request_read(p, pe);
			m = msg_new(p, QFS_PAXOS_ACCEPT, pe->id);
			if (!m)
				continue;
			m->ballot = p->ballot;
			m->commit = min64(p->commit, pe->match);
			m->time_ms = p->now;
		}
		/* Check quorum: a leader nobody answers gives up, so that clients
		 * are redirected instead of waiting on it. */
		if (p->cfg.n > 1 && p->now > max64(p->lease_until, p->lead_since) +
						     p->prm.election_max_ms)
			step_down(p, p->ballot);
	}
}

static uint64_t next_tick(const struct qfs_paxos *p)
{
	if (p->role == QFS_PAXOS_LEADER)
		return p->handoff_until ? min64(p->heartbeat_at, p->handoff_until) : p->heartbeat_at;
	return campaign_at(p);
}

/* ---- public ---- */

/* See paxos.h. */
uint32_t qfs_paxos_preferred(uint64_t group, const struct qfs_paxos_config *cfg)
{
	uint32_t k, n = cfg->n, ns = 0;

	if (!n || n > QFS_PAXOS_MAX_NODES)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		ns += !(cfg->log >> i & 1);
	if (!ns)
		return 0;
	k = (uint32_t)(group % ns);
	/* the k-th smallest storage member's id (ids are distinct) */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t below = 0;

		if (cfg->log >> i & 1)
			continue;
		for (uint32_t j = 0; j < n; j++)
			below += !(cfg->log >> j & 1) && cfg->ids[j] < cfg->ids[i];
		if (below == k)
			return cfg->ids[i];
	}
	return 0;
}

/* See paxos.h. */
size_t qfs_paxos_config_encode(const struct qfs_paxos_config *cfg, uint8_t *buf)
{
	uint32_t n = cfg->n > QFS_PAXOS_MAX_NODES ? QFS_PAXOS_MAX_NODES : cfg->n;

	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *b = buf + 4 + 4 * i;
		uint32_t w = cfg->ids[i] | (cfg->log >> i & 1 ? QFS_PAXOS_LOG_FLAG : 0);

		b[0] = (uint8_t)(w >> 24);
		b[1] = (uint8_t)(w >> 16);
		b[2] = (uint8_t)(w >> 8);
		b[3] = (uint8_t)w;
	}
	return 4 + 4 * (size_t)n;
}

static uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* See paxos.h. */
int qfs_paxos_config_decode(const void *data, size_t len, struct qfs_paxos_config *out)
{
	const uint8_t *b = data;
	struct qfs_paxos_config c;

	if (!b || len < 4)
		return QFS_ECORRUPT;
	memset(&c, 0, sizeof(c));
	c.n = be32(b);
	if (c.n == 0 || c.n > QFS_PAXOS_MAX_NODES || len != 4 + 4 * (size_t)c.n)
		return QFS_ECORRUPT;
	for (uint32_t i = 0; i < c.n; i++) {
		c.ids[i] = be32(b + 4 + 4 * i);
		if (c.ids[i] & QFS_PAXOS_LOG_FLAG) {
			c.ids[i] &= ~QFS_PAXOS_LOG_FLAG;
			c.log |= 1u << i;
		}
	}
	if (!cfg_ok(&c))
		return QFS_ECORRUPT;
	*out = c;
	return 0;
}

/* See paxos.h. */
int qfs_paxos_config_is_log(const struct qfs_paxos_config *cfg, uint32_t id)
{
	for (uint32_t i = 0; i < cfg->n && i < QFS_PAXOS_MAX_NODES; i++)
		if (cfg->ids[i] == id)
			return cfg->log >> i & 1;
	return 0;
}

/* See paxos.h. */
int qfs_paxos_config_one_change(const struct qfs_paxos_config *a, const struct qfs_paxos_config *b)
{
	uint32_t common = 0;

	if (!cfg_ok(a) || !cfg_ok(b))
		return 0;
	for (uint32_t i = 0; i < b->n; i++) {
		if (cfg_has(a, b->ids[i]) &&
		    qfs_paxos_config_is_log(a, b->ids[i]) != qfs_paxos_config_is_log(b, b->ids[i]))
			return 0; /* a member changes kind: not one change */
		common += cfg_has(a, b->ids[i]);
	}
	return (b->n == a->n + 1 && common == a->n) || (b->n + 1 == a->n && common == b->n);
}

/* See paxos.h. */
int qfs_paxos_restore_config(struct qfs_paxos *p, qfs_lsn_t lsn, const struct qfs_paxos_config *cfg)
{
	if (!cfg || !cfg_ok(cfg) || lsn <= p->commit || lsn > p->last || p->ncfgs == QFS_PAXOS_MAX_CFGS ||
	    (p->ncfgs && lsn <= p->cfgs[p->ncfgs - 1].lsn))
		return -EINVAL;
	p->cfgs[p->ncfgs].lsn = lsn;
	p->cfgs[p->ncfgs].cfg = *cfg;
	p->ncfgs++;
	cfg_changed(p);
	return 0;
}

/* See paxos.h. */
void qfs_paxos_params_default(struct qfs_paxos_params *prm)
{
	memset(prm, 0, sizeof(*prm));
	prm->lease_ms = 2000;
	prm->drift_pct = 10;
	prm->election_min_ms = 1000;
	prm->election_max_ms = 2000;
	prm->heartbeat_ms = 200;
	prm->retry_ms = 500;
	prm->seed = 1;
}

static int state_ok(const struct qfs_paxos *p)
{
	if (!(p->applied <= p->commit && p->commit <= p->last && p->persisted <= p->last &&
	      p->applied <= p->persisted))
		return 0;
	for (uint32_t i = 1; i < p->nruns; i++)
		if (p->runs[i].first <= p->runs[i - 1].first ||
		    p->runs[i].ballot <= p->runs[i - 1].ballot)
			return 0;
	if (p->nruns && (p->runs[p->nruns - 1].first > p->last ||
			 p->runs[p->nruns - 1].ballot != p->last_ballot))
		return 0;
	if (p->last > p->commit && (!p->nruns || p->runs[0].first > p->commit + 1))
		return 0;
	if (p->last && p->commit && (!p->nruns || p->runs[0].first > p->commit))
		return 0;
	if (p->role == QFS_PAXOS_LEADER && (p->ballot != p->promised || p->barrier > p->last))
		return 0;
	for (uint32_t i = 0; i < p->ncfgs; i++)
		if (p->cfgs[i].lsn <= p->commit || p->cfgs[i].lsn > p->last ||
		    (i && p->cfgs[i].lsn <= p->cfgs[i - 1].lsn))
			return 0;
	return 1;
}

/* See paxos.h. */
int qfs_paxos_init(struct qfs_paxos *p, uint64_t group, const struct qfs_paxos_config *cfg,
		   uint32_t self, const struct qfs_paxos_params *prm,
		   const struct qfs_paxos_hard *hs, const struct qfs_paxos_run *runs,
		   uint32_t nruns, uint64_t now_ms)
{
	if (!cfg_ok(cfg) || !self || self > 0xffff)
		return -EINVAL;
	if (prm->election_max_ms < prm->election_min_ms || !prm->heartbeat_ms ||
	    prm->drift_pct >= 100 || hs->applied > hs->last || nruns > QFS_PAXOS_MAX_RUNS)
		return -EINVAL;
	if (hs->last > hs->applied && (!nruns || runs[0].first > max64(hs->applied, 1) ||
				       runs[nruns - 1].first > hs->last ||
				       runs[nruns - 1].ballot != hs->last_ballot))
		return -EINVAL;
	for (uint32_t i = 1; i < nruns; i++)
		if (runs[i].first <= runs[i - 1].first || runs[i].ballot <= runs[i - 1].ballot)
			return -EINVAL;

	memset(p, 0, sizeof(*p));
	p->self = self;
	p->group = group;
	p->cfg = *cfg;
	p->base_cfg = *cfg;
	p->prm = *prm;
	p->rng = prm->seed ? prm->seed : 0x9E3779B97F4A7C15ULL;
	p->role = QFS_PAXOS_FOLLOWER;
	p->promised = hs->promised;
	p->max_round = qfs_paxos_ballot_round(hs->promised);
	p->last = hs->last;
	p->last_ballot = hs->last_ballot;
	p->persisted = hs->last;
	p->commit = p->applied = hs->applied;
	p->first_retained = hs->first_retained ? hs->first_retained : 1;
	p->floor_lsn = hs->floor_lsn;
	p->floor_ballot = hs->floor_ballot;
	if (hs->last > hs->applied) {
		memcpy(p->runs, runs, nruns * sizeof(runs[0]));
		p->nruns = nruns;
	} else if (hs->last) {
		p->runs[0].first = hs->last;
		p->runs[0].ballot = hs->last_ballot;
		p->nruns = 1;
	}
	runs_compact(p);
	for (uint32_t i = 0; i < cfg->n; i++)
		if (cfg->ids[i] != self)
			p->peers[p->npeers++].id = cfg->ids[i];
	p->now = now_ms;
	/* We may have granted a lease just before a crash: honour it.  A
	 * replica that never promised a ballot never granted one. */
	p->lease_grant_until = hs->promised && !prm->leases_void ? now_ms + prm->lease_ms : now_ms;
	p->boot_grant_until = p->lease_grant_until;
	election_reset(p);
	/* A new group: its preferred (else first) member campaigns at once, the
	 * others wait an election timeout as usual (timing only; safety never
	 * depends on it). */
	if (!hs->promised && !hs->last && (preferred(p) ? preferred(p) : cfg->ids[0]) == self)
		p->election_at = now_ms;
	return state_ok(p) ? 0 : -EINVAL;
}

/* See paxos.h. */
int qfs_paxos_elect_now(struct qfs_paxos *p, uint64_t now_ms)
{
	if (p->role != QFS_PAXOS_FOLLOWER || p->leader || preferred(p) != p->self || below_floor(p))
		return 0;
	p->election_at = max64(now_ms, p->now);
	trace(p, "event=elect_now at=%llu", (unsigned long long)p->election_at);
	return 1;
}

/* See paxos.h. */
int qfs_paxos_join_floor(const struct qfs_paxos *p, uint32_t id, uint64_t now_ms,
			 struct qfs_paxos_floor *out)
{
	if (!id)
		return -EINVAL;
	/* Only a lease proves that no later ballot was elected: a leader
	 * deposed without knowing it (cut off, or its node paused) may have
	 * a commit point below a removal of id made since (even think id a
	 * member), and a floor there would not cover id's old votes. */
	if (p->role != QFS_PAXOS_LEADER)
		return -EREMOTE;
	if (!((qfs_paxos_quorum(&p->cfg) == 1 && is_member(p, p->self)) || now_ms < p->lease_until))
		return -EBUSY; /* (it steps down, or earns its lease again) */
	if (cfg_has(&p->base_cfg, id))
		return cfg_has(&p->cfg, id) ? -EINVAL : -EBUSY; /* (its removal pending) */
	if (p->commit < p->barrier)
		return -EBUSY;
	out->promised = p->ballot;
	out->lsn = p->commit;
	out->ballot = ballot_at(p, p->commit);
	return 0;
}

static void fill(const struct qfs_paxos *p, struct qfs_paxos_update *up)
{
	memset(up, 0, sizeof(*up));
	up->truncate = p->truncate;
	up->truncate_after = p->truncate_after;
	up->persist = p->npersist ? p->persist : NULL;
	up->npersist = p->npersist;
	up->save_promise = p->save_promise;
	up->promised = p->promised;
	up->msgs = p->nmsgs ? p->msgs : NULL;
	up->nmsgs = p->nmsgs;
	up->reads = p->nreads ? p->reads : NULL;
	up->nreads = p->nreads;
	up->snapshot_to = p->snapshot_to;
	up->commit = min64(p->commit, p->persisted);
	up->leader = p->leader;
	up->ballot = p->leader ? p->ballot : 0;
	up->is_leader = p->role == QFS_PAXOS_LEADER;
	up->lease_until_ms = up->is_leader ? p->lease_until : 0;
	up->next_tick_ms = next_tick(p);
}

/* See paxos.h.  Checks every input before it changes anything. */
int qfs_paxos_step(struct qfs_paxos *p, const struct qfs_paxos_event *ev,
		   struct qfs_paxos_update *up)
{
	int rc = 0;

	if (ev->now_ms < p->now)
		rc = -EINVAL;
	else if (ev->type == QFS_PAXOS_EV_APPLIED &&
		 (ev->lsn < p->applied || ev->lsn > min64(p->commit, p->persisted)))
		rc = -EINVAL;
	else if (ev->type == QFS_PAXOS_EV_RECEIVE && !ev->msg)
		rc = -EINVAL;
	else if (ev->type < QFS_PAXOS_EV_PROPOSE || ev->type > QFS_PAXOS_EV_COMPACTED)
		rc = -EINVAL;
	if (rc) {
		p->npersist = p->nmsgs = p->nreads = 0;
		p->truncate = p->save_promise = 0;
		p->snapshot_to = 0;
		fill(p, up);
		return rc;
	}

	p->npersist = p->nmsgs = p->nreads = 0;
	p->truncate = p->save_promise = 0;
	p->snapshot_to = 0;
	p->now = ev->now_ms;

	switch (ev->type) {
	case QFS_PAXOS_EV_PROPOSE:
		rc = on_propose(p, ev->entries, ev->n);
		break;
	case QFS_PAXOS_EV_RECEIVE:
		on_receive(p, ev->msg);
		break;
	case QFS_PAXOS_EV_PERSISTED:
		if (ev->lsn > p->persisted && ev->lsn <= p->last &&
		    (ev->lsn <= p->commit || ballot_at(p, ev->lsn) == ev->ballot)) {
			p->persisted = ev->lsn;
			if (p->role == QFS_PAXOS_LEADER)
				leader_commit(p);
		}
		break;
	case QFS_PAXOS_EV_APPLIED:
		p->applied = ev->lsn;
		break;
	case QFS_PAXOS_EV_TICK:
		break;
	case QFS_PAXOS_EV_LOG_ENTRIES:
		rc = on_log_entries(p, ev);
		break;
	case QFS_PAXOS_EV_SNAPSHOT_INSTALLED:
		on_snapshot(p, ev->lsn, ev->ballot, ev->cfg);
		break;
	case QFS_PAXOS_EV_COMPACTED:
		if (ev->lsn > p->first_retained && ev->lsn <= p->applied + 1)
			p->first_retained = ev->lsn;
		break;
	}
	if (rc == 0)
		timers(p);
	assert(state_ok(p));
	fill(p, up);
	return rc;
}

/* See paxos.h.  Pure; the driver serialises calls with qfs_paxos_step(). */
int qfs_paxos_can_read_local(const struct qfs_paxos *p, uint64_t now_ms)
{
	/* A single member needs no lease: nobody else can lead. */
	return p->role == QFS_PAXOS_LEADER &&
	       ((qfs_paxos_quorum(&p->cfg) == 1 && is_member(p, p->self)) || now_ms < p->lease_until) &&
	       p->commit >= p->barrier && p->applied >= p->commit;
}

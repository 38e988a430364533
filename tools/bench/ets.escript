#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% ets.escript - the bench.h workload against an ETS table, the table an
%% Erlang service would keep its members in. Prints the same JSON lines as
%% the C drivers with "peer":"ets"; README.md here is the contract.
%%
%% Usage: escript tools/bench/ets.escript N
%% BENCH_OPS: lookups per round, and flips (half as many churn pairs);
%% default 1000000, half the C drivers' default, as Erlang is slower.
%%
%% The definitions below repeat bench.h's one for one; the check_* lines
%% make any divergence visible in the report. C's uint64_t arithmetic is
%% bignum arithmetic cut to 64 bits (band ?MASK) after every add and
%% multiply; the 128-bit products of bench_range and bench_next are plain
%% bignum products.
%%
%% Measured work is ETS calls only. Building members and keys costs Erlang
%% far more than C (splitmix64 on bignums), so it happens outside the
%% clock: keys and write operations are built before the rounds, the load
%% builds members in chunks and times only their inserts.
%%
%% The "processes" of lookup_1p_mops, lookup_2p_mops and lookup_scaling
%% are Erlang processes in this one OS process, run by one scheduler per
%% core (2 on the 2-core bench machine), not forked OS processes as in C.
-mode(compile).

-define(MASK, 16#FFFFFFFFFFFFFFFF).
-define(SEED, 16#67756c6474616231).
-define(ONLINE, 1).
-define(ACTIVE, 2).
-define(WORKERS, 16).
-define(ROLE, 3).
-define(DEFAULT_OPS, 1000000).
-define(DEP_CHECK_STEPS, 10000).
-define(READER_ROUNDS, 5).
%% Members built per untimed step of the load: bounds the garbage that
%% would otherwise inflate rss_member.
-define(LOAD_CHUNK, 16384).
%% Scans repeat until both bounds are met; the median is reported.
-define(SCAN_MIN_RUNS, 3).
-define(SCAN_MIN_NS, 300000000).

%% The record: {UserId, SessionId, Roles0, JoinedAt, Worker, Flags}.
%% roles[1..3] of bench_member are always 0 and are left out. The key is
%% the user id alone: the workload is one guild, so the guild id would be
%% the same in every key.
-define(FLAGS_POS, 6).

main([Arg]) ->
    N = parse_n(Arg),
    L = ops(),
    A = lcg_a(N),
    %% read_concurrency, the documented setting for a read-mostly table:
    %% readers set per-scheduler flags instead of sharing one lock word.
    %% It is not free: on the 2-core bench machine, lookups without it were
    %% about twice as fast, in 1 and in 2 processes (noisy runs). No
    %% write_concurrency: writes come from one process only, and its bucket
    %% locks are one more lock on every lookup (measured slower again).
    T = ets:new(members, [set, public, {read_concurrency, true},
                          {keypos, 1}]),
    Rss0 = rss(),
    LoadS = load(T, N, A),
    emit(N, "load_mps", N / LoadS / 1.0e6),
    emit(N, "bytes_member",
         ets:info(T, memory) * erlang:system_info(wordsize) / N),
    erlang:garbage_collect(),
    emit(N, "rss_member", (rss() - Rss0) / N),

    Keys = [uid(pick(K, N)) || K <- seq(L)],
    Misses = [uid(N + K) || K <- seq(L)],
    tenure(),
    {LookupS, Hits} = rounds(fun() -> hits(T, Keys, 0) end),
    emit(N, "lookup_ns", LookupS / L * 1.0e9),
    {DepS, _} = rounds(fun() -> dep(T, uid(0), L) end),
    emit(N, "lookup_dep_ns", DepS / L * 1.0e9),
    {MissS, MissHits} = rounds(fun() -> hits(T, Misses, 0) end),
    emit(N, "miss_ns", MissS / L * 1.0e9),
    {One, Two, Scaling} = readers(T, Keys),
    emit(N, "lookup_1p_mops", One),
    emit(N, "lookup_2p_mops", Two),
    emit(N, "lookup_scaling", Scaling),
    Dep = dep_active(T, uid(0), ?DEP_CHECK_STEPS, 0),

    {FanS, Groups} = scans(fun() -> fanout(T) end),
    emit(N, "fanout_ms", FanS * 1.0e3),
    Active = lists:sum([length(G) || G <- tuple_to_list(Groups)]),
    {RoleS, Role} = scans(fun() -> length(role(T)) end),
    emit(N, "role_ms", RoleS * 1.0e3),
    {CountS, Count} = scans(fun() -> count(T) end),
    emit(N, "count_ms", CountS * 1.0e3),
    %% For reference: the same count by a fold in Erlang code, the way
    %% a count without a match specification would be written; it must
    %% agree with select_count.
    {FoldS, Count} = scans(fun() -> foldl_count(T) end),
    emit(N, "foldl_count_ms", FoldS * 1.0e3),

    %% The operations of bench_writes_make(L): L flips, L / 2 churn pairs.
    Flips = [flip(K, N) || K <- seq(L)],
    tenure(),
    {FlipS, _} = rounds(fun() -> flip_all(T, Flips) end),
    emit(N, "flip_mps", L / FlipS / 1.0e6),
    Churns = [member(churn(K, N), N, A) || K <- seq(L div 2)],
    tenure(),
    {ChurnS, _} = rounds(fun() -> churn_all(T, Churns) end),
    emit(N, "churn_mps", length(Churns) / ChurnS / 1.0e6),

    Checks = [{"check_hits", Hits, L},
              {"check_misses", MissHits, 0},
              {"check_dep", Dep, expect_dep(N, A)},
              {"check_active", Active, (N + 9) div 10},
              {"check_role", Role, N div 8 + bool(N rem 8 > ?ROLE)},
              {"check_count", Count, N}],
    [emit(N, Name, V) || {Name, V, _} <- Checks],
    emit(N, "ops_lookup", L),
    Wrong = [io_lib:format("~s = ~b, expected ~b", [Name, V, E])
             || {Name, V, E} <- Checks, V =/= E],
    Wrong =:= [] orelse die(N, lists:join("; ", Wrong));
main(_) -> usage().

usage() ->
    io:format(standard_error, "usage: ets.escript N   (members, 16..1e9)~n",
              []),
    halt(2).

%% --- bench.h's definitions ---

mix(X0) -> % splitmix64
    X1 = (X0 + 16#9e3779b97f4a7c15) band ?MASK,
    X2 = ((X1 bxor (X1 bsr 30)) * 16#bf58476d1ce4e5b9) band ?MASK,
    X3 = ((X2 bxor (X2 bsr 27)) * 16#94d049bb133111eb) band ?MASK,
    X3 bxor (X3 bsr 31).

uid(I) -> mix(?SEED bxor I).

range(X, N) -> (X * N) bsr 64.

pick(K, N) -> range(mix(K bxor 16#6c6f6f6b7570), N).

lcg_a(N) ->
    M0 = radical(N, 2, 1),
    M = case N rem 4 =:= 0 andalso M0 rem 4 =/= 0 of
            true -> M0 * 2;
            false -> M0
        end,
    %% Same double product and truncation as C's (uint64_t) cast.
    A = trunc(N * 0.6180339887) div M * M + 1,
    case A rem N of
        0 -> 1;
        R -> R
    end.

%% The product of the distinct prime factors of R (times M), by the trial
%% division of bench_lcg_a.
radical(R, P, M) when P * P > R ->
    case R > 1 of
        true -> M * R;
        false -> M
    end;
radical(R, P, M) when R rem P =:= 0 -> radical(strip(R, P), P + 1, M * P);
radical(R, P, M) -> radical(R, P + 1, M).

strip(R, P) when R rem P =:= 0 -> strip(R div P, P);
strip(R, _) -> R.

next(I, N, A) -> (A * I + 1) rem N.

member(I, N, A) ->
    {uid(I), uid(next(I, N, A)), 1 bsl (I rem 8), I, I rem ?WORKERS,
     ?ONLINE bor active(I)}.

active(I) when I rem 10 =:= 0 -> ?ACTIVE;
active(_) -> 0.

%% The k-th presence flip as {UserId, NewFlags}.
flip(K, N) ->
    X = mix(K bxor 16#666c6970),
    I = range(X, N),
    {uid(I), (X band 1) * ?ONLINE bor active(I)}.

churn(K, N) -> range(mix(K bxor 16#636875726e), N).

%% --- the timed work ---

load(T, N, A) -> load(T, N, A, 0, 0).

load(_T, N, _A, I, Ns) when I >= N -> Ns / 1.0e9;
load(T, N, A, I, Ns) ->
    Chunk = [member(J, N, A) || J <- lists:seq(I, min(I + ?LOAD_CHUNK, N) - 1)],
    T0 = now_ns(),
    insert_each(T, Chunk),
    load(T, N, A, I + ?LOAD_CHUNK, Ns + now_ns() - T0).

%% One insert per member, as the C drivers do: ets:insert of a whole list
%% would be one call for the chunk.
insert_each(T, [M | Ms]) ->
    ets:insert(T, M),
    insert_each(T, Ms);
insert_each(_T, []) -> ok.

%% ets:lookup copies the record to this process's heap, as the C lookups
%% copy it out.
hits(T, [K | Ks], H) ->
    case ets:lookup(T, K) of
        [_] -> hits(T, Ks, H + 1);
        [] -> hits(T, Ks, H)
    end;
hits(_T, [], H) -> H.

dep(_T, _K, 0) -> ok;
dep(T, K, Steps) ->
    [{_, Next, _, _, _, _}] = ets:lookup(T, K),
    dep(T, Next, Steps - 1).

%% check_dep: the sum of joined_at rem 1000 over the records found by the
%% first Steps dependent lookups (the first finds member 0 itself).
dep_active(_T, _K, 0, Sum) -> Sum;
dep_active(T, K, Steps, Sum) ->
    [{_, Next, _, Joined, _, _}] = ets:lookup(T, K),
    dep_active(T, Next, Steps - 1, Sum + Joined rem 1000).

%% What check_dep should be, from the definitions alone: the sum of
%% i rem 1000 over the first ?DEP_CHECK_STEPS members of the cycle from 0.
expect_dep(N, A) -> expect_dep(N, A, 0, ?DEP_CHECK_STEPS, 0).

expect_dep(_N, _A, _I, 0, Active) -> Active;
expect_dep(N, A, I, Steps, Active) ->
    expect_dep(N, A, next(I, N, A), Steps - 1, Active + I rem 1000).

%% As readers.h: ?READER_ROUNDS rounds each time 1 reader and 2 at once,
%% in turn (1 then 2, then 2 then 1); the medians of each, in M lookups/s,
%% and of each round's 2-reader / 1-reader figure.
readers(T, Keys) ->
    Pairs = [pair(T, Keys, R rem 2) || R <- seq(?READER_ROUNDS)],
    {median([One || {One, _} <- Pairs]) / 1.0e6,
     median([Two || {_, Two} <- Pairs]) / 1.0e6,
     median([Two / One || {One, Two} <- Pairs])}.

pair(T, Keys, 0) ->
    One = procs(T, 1, Keys),
    {One, procs(T, 2, Keys)};
pair(T, Keys, 1) ->
    Two = procs(T, 2, Keys),
    {procs(T, 1, Keys), Two}.

%% Aggregate lookups per second of P processes reading at once, from the
%% first start to the last end. Reader W looks up half W of the keys, as
%% every driver's readers do (with P = 1, only the first half).
procs(T, P, Keys) ->
    Parent = self(),
    Half = length(Keys) div 2,
    Part = fun(W) -> lists:sublist(Keys, W * Half + 1, Half) end,
    Readers = [spawn_link(fun() -> reader(Parent, T, Part(W)) end)
               || W <- seq(P)],
    [receive {ready, R} -> ok end || R <- Readers],
    [R ! go || R <- Readers],
    Spans = [receive {done, R, Span} -> Span end || R <- Readers],
    lists:all(fun({Hits, _, _}) -> Hits =:= Half end, Spans)
        orelse error(reader_missed_keys),
    First = lists:min([T0 || {_, T0, _} <- Spans]),
    Last = lists:max([T1 || {_, _, T1} <- Spans]),
    P * Half / ((Last - First) / 1.0e9).

reader(Parent, T, Keys) ->
    tenure(),
    Parent ! {ready, self()},
    receive go -> ok end,
    T0 = now_ns(),
    Hits = hits(T, Keys, 0),
    Parent ! {done, self(), {Hits, T0, now_ns()}}.

%% The active members as {UserId, SessionId} in 16 lists by worker; the
%% grouping is part of the work, as C's fanout delivers per worker.
fanout(T) ->
    Rows = ets:select(T, [{{'$1', '$2', '_', '_', '$3', '$4'},
                           [{'=:=', {'band', '$4', ?ACTIVE}, ?ACTIVE}],
                           [{{'$3', '$1', '$2'}}]}]),
    group(Rows, erlang:make_tuple(?WORKERS, [])).

group([{W, U, S} | Rows], Groups) ->
    I = W + 1,
    group(Rows, setelement(I, Groups, [{U, S} | element(I, Groups)]));
group([], Groups) -> Groups.

role(T) ->
    ets:select(T, [{{'$1', '_', '$2', '_', '_', '_'},
                    [{'=/=', {'band', '$2', 1 bsl ?ROLE}, 0}],
                    ['$1']}]).

count(T) ->
    ets:select_count(T, [{{'_', '_', '_', '_', '_', '$1'},
                          [{'=:=', {'band', '$1', ?ONLINE}, ?ONLINE}],
                          [true]}]).

foldl_count(T) ->
    ets:foldl(fun({_, _, _, _, _, Flags}, C) -> C + (Flags band ?ONLINE) end,
              0, T).

%% Each flip is visible to readers when update_element returns.
flip_all(T, [{U, Flags} | Fs]) ->
    true = ets:update_element(T, U, {?FLAGS_POS, Flags}),
    flip_all(T, Fs);
flip_all(_T, []) -> ok.

churn_all(T, [M | Ms]) ->
    true = ets:delete(T, element(1, M)),
    true = ets:insert(T, M),
    churn_all(T, Ms);
churn_all(_T, []) -> ok.

%% --- harness ---

%% Median seconds of 3 rounds of Fun, and its last result.
rounds(Fun) -> runs(Fun, 3, 0, [], none).

%% Median seconds of repeated scans: at least ?SCAN_MIN_RUNS, and until
%% they took ?SCAN_MIN_NS in all.
scans(Fun) -> runs(Fun, ?SCAN_MIN_RUNS, ?SCAN_MIN_NS, [], none).

runs(_Fun, MinRuns, MinNs, Times, Result)
  when length(Times) >= MinRuns, MinNs =< 0 ->
    {median(Times), Result};
runs(Fun, MinRuns, MinNs, Times, _) ->
    T0 = now_ns(),
    Result = Fun(),
    Ns = now_ns() - T0,
    runs(Fun, MinRuns, MinNs - Ns, [Ns / 1.0e9 | Times], Result).

median(Vs) ->
    S = lists:sort(Vs),
    K = length(S),
    case K rem 2 of
        1 -> lists:nth(K div 2 + 1, S);
        0 -> (lists:nth(K div 2, S) + lists:nth(K div 2 + 1, S)) / 2
    end.

%% Move the live heap (the keys of the coming rounds) to the old
%% generation: a full sweep leaves it below the high-water mark, and the
%% next minor collection promotes it. Otherwise the first minor collections
%% of a timed loop copy the whole key list again.
tenure() ->
    erlang:garbage_collect(),
    erlang:garbage_collect(self(), [{type, minor}]).

now_ns() -> erlang:monotonic_time(nanosecond).

seq(Count) -> lists:seq(0, Count - 1).

bool(true) -> 1;
bool(false) -> 0.

%% Resident set of the emulator in bytes (VmRSS, as bench_rss reads it).
rss() ->
    {ok, Status} = file:read_file("/proc/" ++ os:getpid() ++ "/status"),
    [_, Rest] = binary:split(Status, <<"VmRSS:">>),
    [Kib | _] = string:lexemes(Rest, " \t\n"),
    binary_to_integer(Kib) * 1024.

parse_n(Arg) ->
    case string:to_integer(Arg) of
        {N, []} when N >= 16, N =< 1000000000 -> N;
        _ -> usage()
    end.

ops() ->
    case os:getenv("BENCH_OPS") of
        false -> ?DEFAULT_OPS;
        "" -> ?DEFAULT_OPS;
        S -> list_to_integer(S)
    end.

emit(N, Metric, Value) ->
    io:format("{\"peer\":\"ets\",\"n\":~b,\"metric\":\"~s\",\"value\":~s}~n",
              [N, Metric, g6(Value)]).

die(N, What) ->
    io:format(standard_error, "bench ets n=~b: ~s~n", [N, What]),
    halt(1).

%% C's %.6g, so that values read as the C drivers print them (1e+06 too).
g6(V) when V == 0 -> "0";
g6(V) ->
    F = float(V),
    [Mantissa, Exp] = string:split(float_to_list(F, [{scientific, 5}]), "e"),
    case list_to_integer(Exp) of
        X when X < -4; X >= 6 -> trim(Mantissa) ++ "e" ++ Exp;
        X -> trim(float_to_list(F, [{decimals, 5 - X}]))
    end.

trim(Digits) ->
    case lists:member($., Digits) of
        true -> string:trim(string:trim(Digits, trailing, "0"), trailing, ".");
        false -> Digits
    end.

// The bare C++ Verilator loop of `cdsl bench` (cdsl.sim.bare_loop): the Verilated network top driven
// with no testbench in between, the yardstick co-verification speed is measured against.
//
// This file is fixed; what varies per design is the port list, in a header of constants that
// cdsl.sim.bare_loop writes next to it (`cdsl_bare_ports.h`):
//   CDSL_TOP             the Verilated class (V<top>), CDSL_TOP_HEADER its header
//   CDSL_INPUTS(X)       X(member_payload, member_valid, member_ready, data_bits, last_bit, words) per input
//   CDSL_OUTPUTS(X)      X(member_payload, member_valid, member_ready, last_bit) per output
//
// Usage: bare_loop MODE CYCLES SEED
//   MODE "stream": every input offers a word in every cycle (valid always high, random in-range data,
//                  `last` on each inference's final word), every output always ready: inferences back to back.
//   MODE "single": the same, but the next inference's first word is offered only in the cycle after the
//                  previous inference's last output word was taken: each inference alone, as the
//                  harness runs one (its cycles are the cycle model's latency).
// Runs CYCLES clock cycles after reset and prints one line of JSON: cycles, wall seconds, output
// `last`s (inferences completed), the cycle of the first and last completion and each inference's
// latency when MODE is "single" (first word offered .. last output word taken, inclusive).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "verilated.h"
#include "cdsl_bare_ports.h"
#include CDSL_TOP_HEADER

namespace {

uint64_t rng_state = 0x9E3779B97F4A7C15ull;

uint64_t next_random() {  // xorshift64*
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

struct InputState {
    uint64_t word = 0;     // the payload offered (kept until accepted, as a stream requires)
    uint64_t sent = 0;     // words of the current inference accepted
    uint64_t words = 0;    // words per inference
    unsigned data_bits = 0;
    unsigned last_bit = 0;
    bool fresh = true;     // draw a new word
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4 || (std::strcmp(argv[1], "stream") != 0 && std::strcmp(argv[1], "single") != 0)) {
        std::fprintf(stderr, "usage: %s stream|single CYCLES SEED\n", argv[0]);
        return 2;
    }
    const bool single = std::strcmp(argv[1], "single") == 0;
    const uint64_t cycles = std::strtoull(argv[2], nullptr, 10);
    rng_state ^= std::strtoull(argv[3], nullptr, 10) * 0xD1B54A32D192ED03ull;
    if (rng_state == 0) rng_state = 1;

    auto context = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<CDSL_TOP>(context.get());

    std::vector<InputState> inputs;
#define CDSL_INIT_INPUT(payload, valid, ready, bits, last, n) \
    inputs.push_back(InputState{}); inputs.back().words = n; inputs.back().data_bits = bits; inputs.back().last_bit = last;
    CDSL_INPUTS(CDSL_INIT_INPUT)
    const size_t n_outputs = 0
#define CDSL_COUNT_OUTPUT(payload, valid, ready, last) + 1
        CDSL_OUTPUTS(CDSL_COUNT_OUTPUT);
    std::vector<uint64_t> lasts(n_outputs, 0);

    // Reset: two rising edges with rst high, every stream idle.
    top->rst = 1;
    top->clk = 0;
#define CDSL_IDLE_INPUT(payload, valid, ready, bits, last, n) top->valid = 0;
    CDSL_INPUTS(CDSL_IDLE_INPUT)
#define CDSL_READY_OUTPUT(payload, valid, ready, last) top->ready = 1;
    CDSL_OUTPUTS(CDSL_READY_OUTPUT)
    for (int k = 0; k < 2; ++k) {
        top->clk = 0; top->eval();
        top->clk = 1; top->eval();
    }
    top->rst = 0;

    uint64_t done = 0;             // inferences whose every output delivered `last`
    int64_t first_done = -1, last_done = -1;
    bool offering = true;          // single mode: the current inference's inputs are still being sent
    bool all_sent = false;
    int64_t started = 0;           // single mode: cycle the current inference's first word was offered
    std::vector<uint64_t> latencies;

    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t c = 0; c < cycles; ++c) {
        // Drive the inputs for this cycle (clock low), let the combinational logic settle.
        size_t k = 0;
#define CDSL_DRIVE_INPUT(payload, valid, ready, bits, last, n) {                                         \
            InputState& s = inputs[k++];                                                                   \
            if (s.fresh) {                                                                                 \
                const uint64_t mask = s.data_bits >= 64 ? ~0ull : ((1ull << s.data_bits) - 1);            \
                s.word = (next_random() & mask) | (uint64_t(s.sent + 1 == s.words) << s.last_bit);         \
                s.fresh = false;                                                                           \
            }                                                                                              \
            top->payload = s.word;                                                                         \
            top->valid = (!single || (offering && s.sent < s.words)) ? 1 : 0;                              \
        }
        CDSL_INPUTS(CDSL_DRIVE_INPUT)
        top->clk = 0;
        top->eval();
        // The handshakes the coming rising edge performs.
        k = 0;
#define CDSL_TAKE_INPUT(payload, valid, ready, bits, last, n) {                                          \
            InputState& s = inputs[k++];                                                                   \
            if (top->valid && top->ready) {                                                                \
                s.sent = s.sent + 1 == s.words ? (single ? s.words : 0) : s.sent + 1;                      \
                s.fresh = true;                                                                            \
            }                                                                                              \
        }
        CDSL_INPUTS(CDSL_TAKE_INPUT)
        size_t j = 0;
#define CDSL_TAKE_OUTPUT(payload, valid, ready, last) {                                                  \
            if (top->valid && ((uint64_t(top->payload) >> (last)) & 1)) ++lasts[j];                        \
            ++j;                                                                                           \
        }
        CDSL_OUTPUTS(CDSL_TAKE_OUTPUT)
        uint64_t complete = lasts.empty() ? 0 : lasts[0];
        for (uint64_t n : lasts) complete = n < complete ? n : complete;
        if (complete > done) {
            done = complete;
            if (first_done < 0) first_done = int64_t(c);
            last_done = int64_t(c);
        }
        if (single) {
            all_sent = true;
            for (const InputState& s : inputs) all_sent = all_sent && s.sent == s.words;
            if (all_sent) offering = false;
            if (!offering && complete == uint64_t(latencies.size()) + 1) {
                latencies.push_back(uint64_t(c - started + 1));
                for (InputState& s : inputs) s.sent = 0;
                offering = true;
                started = int64_t(c) + 1;
            }
        }
        top->clk = 1;
        top->eval();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    top->final();

    std::printf("{\"mode\": \"%s\", \"cycles\": %llu, \"seconds\": %.6f, \"inferences\": %llu, "
                "\"first_done\": %lld, \"last_done\": %lld, \"latencies\": [",
                single ? "single" : "stream", (unsigned long long)cycles, seconds, (unsigned long long)done,
                (long long)first_done, (long long)last_done);
    for (size_t i = 0; i < latencies.size(); ++i)
        std::printf("%s%llu", i ? ", " : "", (unsigned long long)latencies[i]);
    std::printf("]}\n");
    return 0;
}

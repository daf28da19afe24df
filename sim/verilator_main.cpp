// cdsl's simulator main for cocotb on Verilator, used instead of cocotb's own `verilator.cpp` by
// builds with `BuildOptions(sim_clock=True)` (cdsl.sim.build): the same VPI scheduling for cocotb
// (start of simulation, value-change, read-write, read-only, next-time and timed callbacks), plus a
// clock on the top module's `clk` driven here, in C++, when `$CDSL_SIM_CLOCK_NS` gives its period.
//
// Why: cocotb's own clock re-registers a VPI timer callback on every half period (an allocation
// and a callback map update per edge), which costs more than evaluating a small design. Here an
// edge is `top->clk = !top->clk`; between two edges with no callback due the loop does nothing but
// evaluate. Testbenches then must not start a clock of their own on `clk`
// (`cdsl.sim.drivers.start_clock` does not when `$CDSL_SIM_CLOCK_NS` is set); edges, `Timer`s and
// value changes are awaited as usual. The clock is low at time 0 and rises first half a period later.
//
// Arguments (as cocotb's runner passes them): --trace, --trace-file FILE (builds with tracing).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#if VM_TRACE
#if defined(VM_TRACE_FST) && VM_TRACE_FST
#include "verilated_fst_c.h"
using Tracer = VerilatedFstC;
static const char* trace_default = "dump.fst";
#else
#include "verilated_vcd_c.h"
using Tracer = VerilatedVcdC;
static const char* trace_default = "dump.vcd";
#endif
static Tracer* tracer = nullptr;
#endif

extern "C" void vlog_startup_routines_bootstrap(void);

namespace {

constexpr uint64_t kNever = ~uint64_t(0);

// Value-change callbacks may write signals that trigger more of them: repeat until quiet.
void settle() {
    while (VerilatedVpi::callValueCbs()) {
    }
}

// Everything that happens at one time step once its time-step callbacks ran.
void evaluate(Vtop* top) {
    do {
        do {
            top->eval_step();
            VerilatedVpi::clearEvalNeeded();
            VerilatedVpi::doInertialPuts();
            settle();
        } while (VerilatedVpi::evalNeeded());
        VerilatedVpi::callCbs(cbReadWriteSynch);
        VerilatedVpi::doInertialPuts();
        settle();
    } while (VerilatedVpi::evalNeeded());
    top->eval_end_step();
    VerilatedVpi::callCbs(cbReadOnlySynch);
}

void at_exit(void*) {
    static bool done = false;  // registered as an exit callback and called after the loop: once
    if (done) return;
    done = true;
    VerilatedVpi::callCbs(cbEndOfSimulation);
#if VM_TRACE
    if (tracer) tracer->close();
#endif
}

// Half the clock period in simulation steps, or 0 (no clock here) when the variable is unset.
uint64_t half_period(const VerilatedContext* context) {
    const char* text = std::getenv("CDSL_SIM_CLOCK_NS");
    if (!text || !*text) return 0;
    const double ns = std::atof(text);
    const double steps = ns * 1e-9 / std::pow(10.0, context->timeprecision()) / 2.0;
    if (!(steps >= 1.0)) {
        std::fprintf(stderr, "cdsl: CDSL_SIM_CLOCK_NS=%s is not a clock period this simulator can step\n", text);
        std::exit(2);
    }
    return uint64_t(std::llround(steps));
}

}  // namespace

int main(int argc, char** argv) {
    bool trace = false;
    const char* trace_file = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--trace") == 0) trace = true;
        else if (std::strcmp(argv[i], "--trace-file") == 0 && i + 1 < argc) trace_file = argv[++i];
    }
    Verilated::commandArgs(argc, argv);
    VerilatedContext* context = Verilated::threadContextp();
    std::unique_ptr<Vtop> top(new Vtop(""));
    Verilated::fatalOnVpiError(false);  // cocotb registers system tasks Verilator does not know
#if VM_TRACE
    if (trace || trace_file) {
        Verilated::traceEverOn(true);
        tracer = new Tracer;
        top->trace(tracer, 99);
        tracer->open(trace_file ? trace_file : trace_default);
    }
#else
    if (trace || trace_file) {
        std::fprintf(stderr, "cdsl: this simulator was built without tracing\n");
        return 2;
    }
#endif
    const uint64_t half = half_period(context);
    uint64_t next_edge = half ? half : kNever;
    if (half) top->clk = 0;

    vlog_startup_routines_bootstrap();
    Verilated::addExitCb(at_exit, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle();

    uint64_t now = 0;
    while (!Verilated::gotFinish()) {
        evaluate(top.get());
#if VM_TRACE
        if (tracer) tracer->dump(now);
#endif
        uint64_t next = VerilatedVpi::cbNextDeadline();
        if (top->eventsPending() && top->nextTimeSlot() < next) next = top->nextTimeSlot();
        if (next_edge < next) next = next_edge;
        if (next == kNever) break;  // nothing will ever happen again
        now = next;
        context->time(now);
        VerilatedVpi::callCbs(cbNextSimTime);
        settle();
        if (now == next_edge) {
            top->clk = !top->clk;
            next_edge += half;
        }
        VerilatedVpi::callTimedCbs();
        settle();
    }
    top->final();
    at_exit(nullptr);
#if VM_TRACE
    if (tracer) {
        delete tracer;
        tracer = nullptr;
    }
#endif
    return context->errorCount() > 0 ? 1 : 0;
}

"""Test doubles that ship with the library, for its own tests, plugin authors, front ends and
notebooks. Import each from its module; nothing here is imported by `orchestrator` itself, and
importing this package loads none of them (the fake server needs aiohttp's server side).

    fakeserver      `FakeServer`, `start_fake_server`: a real HTTP server on 127.0.0.1 speaking
                    the OpenAI Images and Gemini / Imagen APIs, with injected faults and request
                    counts (also `imagebatch fake-server`)
    scripted        `ScriptedProvider`: a provider answering each item's attempts from a script
                    and recording every call; `make_spec`, `next_event`, `png_bytes`
    clock           `FakeClock`: a `Clock` whose time moves only when something sleeps or the
                    test calls `advance`
    virtual_loop    `VirtualTimeLoop`, `virtual_time`: an event loop whose clock jumps to the next
                    timer instead of sleeping
    outside         `journal_at`, `items`, `only_job_id`, `integrity`, `wait_for`: a workspace
                    read from outside the process running its job, and bounded polling
"""

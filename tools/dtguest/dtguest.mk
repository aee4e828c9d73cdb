# dtguest: the bare-metal multiboot test guest, built into $(BUILD)/dtguest.elf.
# Included by the top Makefile. Self-contained: its own compiler flags (never
# the host CFLAGS or sanitizer flags). Where gcc cannot build and link 32-bit
# freestanding code, it prints a note and builds nothing.
DTGUEST_CC ?= gcc
DTGUEST_DIR := tools/dtguest
DTGUEST_SRC := $(DTGUEST_DIR)/start.S $(DTGUEST_DIR)/dtguest.c
DTGUEST_DEPS := $(DTGUEST_SRC) $(DTGUEST_DIR)/dtguest.h $(DTGUEST_DIR)/dtguest.ld $(DTGUEST_DIR)/dtguest.mk
DTGUEST_FLAGS := -m32 -march=i686 -std=gnu11 -ffreestanding -nostdlib -fno-pic -fno-pie -no-pie \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fno-unwind-tables -fno-builtin \
	-mno-sse -mno-mmx -mno-80387 -O2 -g -Wall -Wextra -static -Wl,--build-id=none \
	-Wl,-T,$(DTGUEST_DIR)/dtguest.ld -Wl,-z,max-page-size=4096 -Wl,--no-warn-rwx-segments
DTGUEST_OK := $(shell printf 'void _start(void){for(;;);}\n' | $(DTGUEST_CC) -m32 -ffreestanding \
	-nostdlib -fno-pic -no-pie -static -x c -o /dev/null - >/dev/null 2>&1 && echo yes)

ifeq ($(DTGUEST_OK),yes)
all: $(BUILD)/dtguest.elf
$(BUILD)/dtguest.elf: $(DTGUEST_DEPS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GUEST   $@")
	$(Q)$(DTGUEST_CC) $(DTGUEST_FLAGS) -o $@ $(DTGUEST_SRC)
else
all: dtguest-skip
dtguest-skip:
	@echo "note: $(DTGUEST_CC) -m32 cannot build freestanding 32-bit code here: $(BUILD)/dtguest.elf not built (QEMU guest tests skip)"
.PHONY: dtguest-skip
endif

/* dp83820_regs.h: DP83820 register offsets, bits and descriptor flags, named as the datasheet and ns83820.c name them */
#ifndef DP83820_REGS_H
#define DP83820_REGS_H

/* Register offsets (datasheet / ns83820.c names) */
#define CR      0x00
#define CFG     0x04
#define MEAR    0x08
#define PTSCR   0x0c
#define ISR     0x10
#define IMR     0x14
#define IER     0x18
#define IHR     0x1c
#define TXDP    0x20
#define TXDP_HI 0x24
#define RXDP    0x30
#define RXDP_HI 0x34
#define RFCR    0x48
#define RFDR    0x4c
#define SRR     0x58
#define TBICR   0xe0
#define TBISR   0xe4
#define TANLPAR 0xec

#define CR_TXE 0x001
#define CR_TXD 0x002
#define CR_RXE 0x004
#define CR_RXD 0x008
#define CR_TXR 0x010
#define CR_RXR 0x020
#define CR_SWI 0x080
#define CR_RST 0x100

/* CFG status bits come from the PHY pins; ns83820 XORs SPDSTS/DUPSTS with
 * its polarity mask, so LNKSTS|SPDSTS0 reads back as "1000 Mb/s, full". */
#define CFG_LNKSTS    0x80000000u
#define CFG_SPDSTS    0x60000000u
#define CFG_SPDSTS0   0x20000000u
#define CFG_DUPSTS    0x10000000u
#define CFG_TBI_EN    0x01000000u
#define CFG_PINT_LNKSTS 0x00080000u
#define CFG_PCI64_DET 0x00002000u
#define CFG_M64ADDR   0x00000800u	/* 64-bit descriptor addresses */
#define CFG_WMASK     (0x01ffffffu & ~CFG_PCI64_DET)

#define PTSCR_EEBIST_EN   0x0002
#define PTSCR_EELOAD_EN   0x0004
#define PTSCR_RBIST_FAIL  0x01b8
#define PTSCR_RBIST_DONE  0x0200
#define PTSCR_RBIST_EN    0x0400
#define PTSCR_RBIST_RST   0x2000

#define MEAR_EEDO 0x02u	/* input from the serial EEPROM: nothing there */

#define ISR_TXRCMP 0x00400000u
#define ISR_RXRCMP 0x00200000u
#define ISR_RMABT  0x00040000u
#define ISR_PHY    0x00004000u
#define ISR_SWI    0x00001000u
#define ISR_TXURN  0x00000400u
#define ISR_TXIDLE 0x00000200u
#define ISR_TXERR  0x00000100u
#define ISR_TXDESC 0x00000080u
#define ISR_TXOK   0x00000040u
#define ISR_RXORN  0x00000020u
#define ISR_RXIDLE 0x00000010u
#define ISR_RXERR  0x00000004u
#define ISR_RXDESC 0x00000002u
#define ISR_RXOK   0x00000001u

#define RFCR_RFEN 0x80000000u
#define RFCR_AAB  0x40000000u
#define RFCR_AAM  0x20000000u
#define RFCR_AAU  0x10000000u
#define RFCR_APM  0x08000000u
#define RFCR_MHEN 0x00200000u
#define RFCR_RFADDR 0x000003ffu

#define TBICR_MR_RESTART_AN 0x00000200u
#define TBISR_MR_LINK_STATUS 0x00000020u
#define TBISR_MR_AN_COMPLETE 0x00000004u
#define TANAR_HALF_DUP 0x00000040u
#define TANAR_FULL_DUP 0x00000020u

#define SRR_REV 0x0103	/* a DP83820 revision ns83820 knows */

#define CMDSTS_OWN   0x80000000u
#define CMDSTS_MORE  0x40000000u
#define CMDSTS_INTR  0x20000000u
#define CMDSTS_ERR   0x10000000u
#define CMDSTS_OK    0x08000000u
#define CMDSTS_LEN_MASK 0x0000ffffu
#define CMDSTS_DEST_SELF  0x00800000u
#define CMDSTS_DEST_MULTI 0x01000000u
#define CMDSTS_DEST_BCAST 0x01800000u
#define CMDSTS_DEST_MASK  0x01800000u

#endif

import { describe, expect, it } from 'vitest'
import { duration, relative, resetsIn, usageLevel, windowName, quantity } from '@/lib/format'
import { routingText } from '@/lib/routing'

describe('times read like a person says them', () => {
  it('keeps the two largest units', () => {
    expect(duration(2 * 3600 + 14 * 60 + 5)).toBe('2 h 14 min')
    expect(duration(45)).toBe('45 s')
    expect(duration(3 * 86400 + 2 * 3600 + 59)).toBe('3 d 2 h')
    expect(duration(3600 + 5)).toBe('1 h')
  })
  it('says when a window resets', () => {
    expect(resetsIn(1000 + 7200 + 840, 1000)).toBe('resets in 2 h 14 min')
    expect(resetsIn(900, 1000)).toBe('reset due')
    expect(resetsIn(null, 1000)).toBe('no reset time')
  })
  it('says how long ago', () => {
    expect(relative(1000 - 300, 1000)).toBe('5 min ago')
    expect(relative(1000 + 60, 1000)).toBe('in 1 min')
    expect(relative(null, 1000)).toBe('never')
  })
})

describe('usage bars turn amber at 80 % and red at 95 %', () => {
  it.each([
    [0, 'ok'],
    [79.9, 'ok'],
    [80, 'warn'],
    [94.9, 'warn'],
    [95, 'danger'],
    [100, 'danger'],
  ])('%s %% is %s', (value, level) => expect(usageLevel(value)).toBe(level))
})

describe('windows and quantities have units', () => {
  it('names windows', () => {
    expect(windowName(300)).toBe('5 h')
    expect(windowName(10080)).toBe('7 d')
    expect(windowName(45)).toBe('45 min')
  })
  it('formats quantities', () => {
    expect(quantity('cost_usd', 1.5)).toBe('$1.50')
    expect(quantity('requests', 12)).toBe('12 req')
    expect(quantity('tokens', 50000)).toMatch(/50K tok/i)
  })
})

describe('routingText', () => {
  it('says in words why the account was chosen, including the policy reasons', () => {
    expect(routingText('burn_first')).toBe('burn_first: a burn-first account, spent before the others')
    expect(routingText('headroom')).toContain('placed where a long one fits')
    expect(routingText('sticky_moved:preserve_floor')).toContain('reached its reserve floor')
    expect(routingText('earlier_reset')).toContain('resets first')
    expect(routingText('something_new')).toBe('something_new')
    expect(routingText('')).toBe('—')
  })
})

import assert from 'node:assert/strict';
import { AcdError, isAcdError } from '../../gateway/acd/errors';
import { CcedgeError, isCcedgeError } from '../../gateway/errors';
import { HwError } from '../../hw/errors';
import { ImageError } from '../../image/errors';
import { VaultError } from '../../vault/errors';
import { SyncError } from '../../sync/errors';

/** The shared coded-error base: each folder's class keeps its name, code, details and instanceof. */
describe('CodedError subclasses', () => {
  it('carry their own class name, code, message and details', () => {
    const e = new HwError('HW_CLOSED', 'closed', { span: 1 });
    assert.ok(e instanceof HwError && e instanceof Error);
    assert.equal(e.name, 'HwError');
    assert.equal(String(e), 'HwError: closed');
    assert.equal(e.code, 'HW_CLOSED');
    assert.deepEqual(e.details, { span: 1 });
    assert.equal(new SyncError('CMD_UNKNOWN', 'x').details, undefined);
    assert.ok(!(new SyncError('CMD_UNKNOWN', 'x') instanceof HwError));
  });

  it('a gateway subsystem error is a CcedgeError too, and the guards check class and code', () => {
    const e = new AcdError('ACD_CLOSED', 'closed');
    assert.equal(e.name, 'AcdError');
    assert.ok(e instanceof CcedgeError);
    assert.ok(isCcedgeError(e) && isCcedgeError(e, 'ACD_CLOSED') && isAcdError(e, 'ACD_CLOSED'));
    assert.ok(!isAcdError(e, 'ACD_UNKNOWN_AGENT'));
    assert.ok(!isAcdError(new CcedgeError('ACD_CLOSED', 'closed')));
    assert.ok(!isCcedgeError(new Error('plain')));
  });

  it('keeps what each folder added: vault details always an object, image exit codes', () => {
    assert.deepEqual(new VaultError('VAULT_RANGE', 'r').details, {});
    assert.equal(new ImageError('IMAGE_USAGE', 'u').exitCode, 2);
    assert.equal(new ImageError('UPDATE_BAD_SIGNATURE', 's').exitCode, 1);
  });
});

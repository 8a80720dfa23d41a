// Where credentials are checked. The htpasswd file (PasswordFile) is the first source; tokens
// or a directory service can come later as other implementations. The guard only needs this.

export interface Authenticator {
  /**
   * True only for a known user with the right password. Never rejects; takes about as long
   * for an unknown user as for a known one.
   */
  verify(user: string, password: string): Promise<boolean>;
}
